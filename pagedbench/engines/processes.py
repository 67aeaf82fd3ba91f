"""This process's descendants (psutil), and reaping the ones a failed start left behind.

A tensor-parallel engine whose start fails can leave its worker processes alive, each holding most of
a GPU (seen on 2xH200: 128.8 GiB on each GPU after a failed TP 2 start, and every later test of the
session failed to start). What was not running before the start is ours to stop.
"""

from __future__ import annotations

import os
import signal
import time

import psutil


def descendants() -> set[int]:
    """PIDs of this process's live descendants (engine cores, tensor-parallel workers, servers)."""
    try:
        return {p.pid for p in psutil.Process().children(recursive=True)}
    except psutil.Error:
        return set()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # a zombie holds no memory
    except psutil.Error:
        return False


def reap_new(before: set[int], grace_s: float = 10.0) -> list[int]:
    """SIGTERM the descendants that were not in `before`, SIGKILL what is left after grace_s; their PIDs."""
    new = sorted(descendants() - before)
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
        for pid in new:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(_alive(p) for p in new):
            time.sleep(0.1)
        if not any(_alive(p) for p in new):
            break
    return new
