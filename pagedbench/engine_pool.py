"""One heavy engine resident at a time (a vLLM engine or the HF model).

An 8B engine takes most of a GPU: before another starts, the resident one is
shut down and its memory handed back. Equal settings reuse the resident engine.
A refused start is remembered, so tests that share those settings report the
same refusal at once instead of paying for it again.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol

from .errors import PagedBenchError


class Engine(Protocol):
    def shutdown(self) -> None: ...


class Settings(Hashable, Protocol):
    def start(self) -> Engine: ...


class EnginePool:
    def __init__(self, memory_probe=None, slack: float = 2.0):
        self.settings: Settings | None = None
        self.engine: Engine | None = None
        self.failed: dict[Settings, Exception] = {}
        self.starts = 0
        # Device memory in use (GiB, e.g. from NVML) read before each start and after each shutdown:
        # an engine that does not hand its memory back would starve the next one.
        self.memory_probe = memory_probe
        self.slack = slack
        self._used_before: float | None = None

    def get(self, settings: Settings) -> Engine:
        if settings in self.failed:
            raise self.failed[settings]
        if self.engine is not None and self.settings == settings:
            return self.engine
        self.close()
        self._used_before = self.memory_probe() if self.memory_probe else None
        try:
            self.engine = settings.start()
        except Exception as exc:
            self.failed[settings] = exc
            self._check_released(f"a failed start ({exc})")
            raise
        self.settings = settings
        self.starts += 1
        return self.engine

    def close(self) -> None:
        if self.engine is None:
            return
        engine, self.engine, self.settings = self.engine, None, None
        engine.shutdown()
        self._check_released(f"{type(engine).__name__} shut down")

    def _check_released(self, what: str) -> None:
        used = self.memory_probe() if self.memory_probe and self._used_before is not None else None
        if used is not None and used > self._used_before + self.slack:
            raise PagedBenchError(f"{what} but the device still has {used:.1f} GiB "
                                  f"in use ({self._used_before:.1f} GiB before it started)")
