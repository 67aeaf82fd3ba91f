"""Reaping what a failed start left behind: only processes that were not running before it."""

import subprocess
import sys

from pagedbench.engines.processes import descendants, reap_new

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
STUBBORN = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(120)"]


def test_a_failed_start_s_workers_are_stopped_and_earlier_processes_kept():
    earlier = subprocess.Popen(SLEEPER)
    try:
        before = descendants()
        assert earlier.pid in before
        stubborn = subprocess.Popen(STUBBORN, stdout=subprocess.PIPE, text=True)  # ignores SIGTERM
        left = [subprocess.Popen(SLEEPER), stubborn]  # a start's workers
        assert stubborn.stdout.readline().strip() == "ready"  # its handler is in place
        reaped = reap_new(before, grace_s=1.0)
        assert sorted(reaped) == sorted(p.pid for p in left)
        assert all(p.wait(timeout=30) == -9 for p in left[1:])  # SIGKILL took the one that ignored SIGTERM
        assert left[0].wait(timeout=30) == -15
        assert earlier.poll() is None  # running before the start: not ours to stop
    finally:
        earlier.kill()
        earlier.wait()


def test_nothing_new_nothing_stopped():
    assert reap_new(descendants()) == []
