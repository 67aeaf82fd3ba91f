"""The `vllm serve` processes a session has running, so one call stops them all.

The plugin's session owns one registry (plugin/session.py) and makes it the active one for its
lifetime: a server started anywhere in the session (a test, the engine pool) adds itself to it, and
the session's end (plugin/faults.py's SessionEnd: on SIGTERM or Ctrl-C, and once more when the session
finishes) calls `stop_all()`. Once stopping has begun no new server starts: a cancelled session must
not leave one behind that started during its clean-up.
"""

from __future__ import annotations

import threading
from typing import ClassVar, Protocol


class Stoppable(Protocol):
    def stop(self, grace_s: float) -> None: ...


class LiveServers:
    _active: ClassVar[list[LiveServers]] = []  # the active registry last; a nested session's on top

    def __init__(self) -> None:
        self._servers: set[Stoppable] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @classmethod
    def active(cls) -> LiveServers | None:
        """The registry of the session now running, None outside a session."""
        return cls._active[-1] if cls._active else None

    def activate(self) -> LiveServers:
        LiveServers._active.append(self)
        return self

    def deactivate(self) -> None:
        if self in LiveServers._active:
            LiveServers._active.remove(self)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def add(self, server: Stoppable) -> None:
        with self._lock:
            self._servers.add(server)

    def discard(self, server: Stoppable) -> None:
        with self._lock:
            self._servers.discard(server)

    def __len__(self) -> int:
        with self._lock:
            return len(self._servers)

    def stop_all(self, grace_s: float) -> None:
        """Stop every live server (each with its process group); no server of this registry starts afterwards."""
        self._stopping.set()
        with self._lock:
            servers = list(self._servers)
        # All at once: one grace period in all, not one per server (a cancelled CI job has seconds, not minutes).
        stopping = [threading.Thread(target=server.stop, args=(grace_s,), daemon=True) for server in servers]
        for t in stopping:
            t.start()
        for t in stopping:
            t.join()
