"""One heavy engine resident at a time (a vLLM engine or the HF model).

An 8B engine takes most of a GPU: before another starts, the resident one is
shut down and its memory handed back. Equal settings reuse the resident engine.
A refused start is remembered, so tests that share those settings report the
same refusal at once instead of paying for it again.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol


class Engine(Protocol):
    def shutdown(self) -> None: ...


class Settings(Hashable, Protocol):
    def start(self) -> Engine: ...


class EnginePool:
    def __init__(self, on_release=None):
        self.settings: Settings | None = None
        self.engine: Engine | None = None
        self.failed: dict[Settings, Exception] = {}
        self.starts = 0
        self.on_release = on_release  # called after each shutdown (e.g. an NVML memory check)

    def get(self, settings: Settings) -> Engine:
        if settings in self.failed:
            raise self.failed[settings]
        if self.engine is not None and self.settings == settings:
            return self.engine
        self.close()
        try:
            self.engine = settings.start()
        except Exception as exc:
            self.failed[settings] = exc
            raise
        self.settings = settings
        self.starts += 1
        return self.engine

    def close(self) -> None:
        if self.engine is None:
            return
        engine, self.engine, self.settings = self.engine, None, None
        engine.shutdown()
        if self.on_release is not None:
            self.on_release(engine)
