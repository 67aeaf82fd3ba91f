"""Reaping what a failed start left behind: only processes that were not running before it."""

import subprocess
import sys
import time

from pagedbench.engines.processes import descendants, reap_new

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
STUBBORN = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"]


def test_a_failed_start_s_workers_are_stopped_and_earlier_processes_kept():
    earlier = subprocess.Popen(SLEEPER)
    try:
        before = descendants()
        assert earlier.pid in before
        left = [subprocess.Popen(SLEEPER), subprocess.Popen(STUBBORN)]  # a start's workers, one ignoring SIGTERM
        time.sleep(0.5)  # the stubborn one installs its handler
        t = time.monotonic()
        reaped = reap_new(before, grace_s=1.0)
        assert sorted(reaped) == sorted(p.pid for p in left)
        assert all(p.wait(timeout=5) is not None for p in left)
        assert time.monotonic() - t < 5
        assert earlier.poll() is None  # running before the start: not ours to stop
    finally:
        earlier.kill()
        earlier.wait()


def test_nothing_new_nothing_stopped():
    assert reap_new(descendants()) == []
