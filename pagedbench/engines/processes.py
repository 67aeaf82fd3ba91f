"""This process's descendants, and reaping the ones a failed start left behind (psutil).

A tensor-parallel engine whose start fails can leave its worker processes alive, each holding most of
a GPU, and every later test of the session then fails to start (docs/hardware-notes.md). What was not
running before the start is ours to stop.
"""

from __future__ import annotations

import time

import psutil


def descendants() -> set[int]:
    """PIDs of this process's live descendants (engine cores, tensor-parallel workers, servers)."""
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE  # a zombie holds no memory
    except psutil.NoSuchProcess:
        return False


def reap_new(before: set[int], grace_s: float = 10.0) -> list[int]:
    """SIGTERM the descendants that were not in `before`, SIGKILL what is left after grace_s; their PIDs."""
    new = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    for stop, wait in ((psutil.Process.terminate, grace_s), (psutil.Process.kill, 2.0)):
        for proc in new:
            try:
                stop(proc)
            except psutil.NoSuchProcess:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(_alive(p) for p in new):
            time.sleep(0.1)
        if not any(_alive(p) for p in new):
            break
    return sorted(p.pid for p in new)
