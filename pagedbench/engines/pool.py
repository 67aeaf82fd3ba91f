"""One heavy engine resident at a time (a vLLM engine or the HF model).

An 8B engine takes most of a GPU: before another starts, the resident one is
shut down and its memory handed back. Equal settings reuse the resident engine.
A refused start is remembered, so tests that share those settings report the
same refusal at once instead of paying for it again.

Where two fit and starting is what costs (two `vllm serve` processes of a 2-layer model on
a 2-core CPU: ~30 s of imports each), `get(settings, beside=...)` starts the others at the
same time and keeps them idle until a test asks for them; closing the pool closes them too.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Protocol

from pagedbench.errors import PagedBenchError


class Engine(Protocol):
    def shutdown(self) -> None: ...


class Settings(Hashable, Protocol):
    def start(self) -> Engine: ...


class EnginePool:
    def __init__(self, memory_probe=None, slack: float = 2.0):
        self.settings: Settings | None = None
        self.engine: Engine | None = None
        self.failed: dict[Settings, Exception] = {}
        self.standby: dict[Settings, Engine] = {}   # started beside the resident one, idle until asked for
        self.starts = 0
        # Device memory in use (GiB, e.g. from NVML) read before each start and after each shutdown:
        # an engine that does not hand its memory back would starve the next one.
        self.memory_probe = memory_probe
        self.slack = slack
        self._used_before: float | None = None

    def get(self, settings: Settings, beside: tuple[Settings, ...] = ()) -> Engine:
        """The engine for `settings`, started if it is not resident (or standing by); `beside`: settings
        started at the same time and kept idle until asked for."""
        if settings in self.failed:
            raise self.failed[settings]
        if self.engine is not None and self.settings == settings:
            return self.engine
        if settings in self.standby:
            self._shutdown_resident()
            self.engine, self.settings = self.standby.pop(settings), settings
            return self.engine
        self.close()
        self._used_before = self.memory_probe() if self.memory_probe else None
        starting = [_Start(s) for s in dict.fromkeys(beside) if s != settings and s not in self.failed]
        try:
            self.engine = settings.start()
        except Exception as exc:
            self.failed[settings] = exc
            self._stand_by(starting)
            self._shutdown_standby()
            self._check_released(f"a failed start ({exc})")
            raise
        self._stand_by(starting)
        self.settings = settings
        self.starts += 1
        return self.engine

    def _stand_by(self, starting: list[_Start]) -> None:
        for start in starting:
            engine = start.result()
            if isinstance(engine, Exception):
                self.failed[start.settings] = engine  # reported when a test asks for these settings
            else:
                self.standby[start.settings] = engine
                self.starts += 1

    def _shutdown_resident(self) -> None:
        if self.engine is not None:
            engine, self.engine, self.settings = self.engine, None, None
            engine.shutdown()

    def _shutdown_standby(self) -> None:
        while self.standby:
            self.standby.popitem()[1].shutdown()

    def close(self) -> None:
        """Shut down the resident engine and every one standing by."""
        if self.engine is None and not self.standby:
            return
        what = type(self.engine or next(iter(self.standby.values()))).__name__
        self._shutdown_resident()
        self._shutdown_standby()
        self._check_released(f"{what} shut down")

    def _check_released(self, what: str) -> None:
        used = self.memory_probe() if self.memory_probe and self._used_before is not None else None
        if used is not None and used > self._used_before + self.slack:
            raise PagedBenchError(f"{what} but the device still has {used:.1f} GiB "
                                  f"in use ({self._used_before:.1f} GiB before it started)")


class _Start:
    """settings.start() on a daemon thread: a Ctrl-C in the main thread does not wait for it (a server
    it launched is stopped by the server module's exit hook)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._outcome: Engine | Exception | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"start {settings!r:.60}")
        self._thread.start()

    def _run(self) -> None:
        try:
            self._outcome = self.settings.start()
        except Exception as exc:  # noqa: BLE001 - handed to the pool, which fails the tests that ask for it
            self._outcome = exc

    def result(self) -> Engine | Exception:
        self._thread.join()
        return self._outcome
