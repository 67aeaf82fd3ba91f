"""This process's descendants, read from /proc, and reaping the ones a failed start left behind.

A tensor-parallel engine whose start fails can leave its worker processes alive, each holding most of
a GPU (seen on 2xH200: 128.8 GiB on each GPU after a failed TP 2 start, and every later test of the
session failed to start). What was not running before the start is ours to stop.
"""

from __future__ import annotations

import os
import signal
import time


def descendants() -> set[int]:
    """PIDs of this process's live descendants (engine cores, tensor-parallel workers, servers)."""
    me = os.getpid()
    parent_of = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return set()  # no /proc (not Linux)
    for entry in entries:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent_of[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    mine = {me}
    grew = True
    while grew:
        new = {p for p, pp in parent_of.items() if pp in mine} - mine
        mine |= new
        grew = bool(new)
    return mine - {me}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie holds no memory
    except (OSError, IndexError):
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
