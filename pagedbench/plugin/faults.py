"""What keeps a cancelled, crowded or concurrent session from losing or poisoning anything.

- SIGTERM (what `timeout` and a cancelled CI job send) is turned into the KeyboardInterrupt
  Ctrl-C raises, so one path handles both: pytest ends the session, the run JSON is written
  with what finished, and every process the suite started is stopped (`stop_everything`): the
  servers through the session's registry (`live_servers`, its one entry point `stop_all()`), then
  any other descendant.
- Two `--update-baselines` sessions writing one baselines folder take turns
  (`baseline_file.update_lock`, which `pagedbench baseline` takes too): each reads, merges and
  writes baselines/<slug>.json while it holds the lock, so neither loses the other's tests.
- A contaminated timing is left out of a run the user saves with --benchmark-save
  (`drop_contaminated`), as it is left out of the baselines.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time

import filelock
import psutil
import pytest

from pagedbench.engines.live_servers import LiveServers
from pagedbench.gate.baseline_file import update_lock

# Seconds a server gets to stop on its own when the session is cancelled: a CI runner sends SIGKILL
# 10 s after SIGTERM (GitHub Actions, GitLab), so the whole clean-up must fit well inside that.
CANCEL_GRACE_S = 3.0
REFUSED = pytest.StashKey[str]()
_previous: dict[int, object] = {}
_cancelled = threading.Event()


def _on_sigterm(signum, frame):
    if _cancelled.is_set():
        return  # already ending: a second signal must not break the clean-up half way
    _cancelled.set()
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def install_sigterm() -> bool:
    """SIGTERM raises KeyboardInterrupt in the main thread, as SIGINT does; False off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return False
    _cancelled.clear()
    _previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, _on_sigterm)
    return True


def uninstall_sigterm() -> None:
    if signal.SIGTERM in _previous and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _previous.pop(signal.SIGTERM))


def live_servers() -> LiveServers:
    """The registry a session owns: active from now on, so every server the session starts is in it."""
    return LiveServers().activate()


def stop_everything(live: LiveServers | None, grace_s: float = CANCEL_GRACE_S) -> list[int]:
    """After an interrupt: every server in the session's registry, with its process group, then any other
    descendant of this process (an in-process engine's core, a resource tracker), SIGTERM then
    SIGKILL after grace_s. The PIDs that were still alive."""
    if live is not None:
        live.stop_all(grace_s)
    try:
        left = psutil.Process().children(recursive=True)
    except psutil.Error:
        return []
    for p in left:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(left, timeout=grace_s)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=2.0)
    return [p.pid for p in left]


def drop_contaminated(output_json: dict) -> list[str]:
    """Leave out of a pytest-benchmark run the benchmarks the gate marked contaminated; their names.
    The table pytest-benchmark prints still shows them (it reads the session, not this document)."""
    kept, dropped = [], []
    for bench in output_json.get("benchmarks", []):
        (dropped if (bench.get("extra_info") or {}).get("contaminated") else kept).append(bench)
    if dropped:
        output_json["benchmarks"] = kept
        output_json["pagedbench_left_out"] = {b["fullname"]: b["extra_info"]["contaminated"] for b in dropped}
    return [b["fullname"] for b in dropped]


def wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    """The PIDs among pids still alive (not zombies) after up to timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = []
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


class SessionEnd:
    """pytest plugin object: wraps the whole session end (pytest-benchmark's save and the gate's writes).
    On an interrupt, stops every process of the suite before anything else; with --update-baselines, holds
    the baselines folder's lock until the baselines are written, or refuses in one line when it waits too long."""

    def __init__(self, gate_options, live: LiveServers | None = None):
        self.gate_options = gate_options  # () -> the gate's Options, to turn its baseline update off
        self.live = live                  # the session's servers

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session, exitstatus):
        config = session.config
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        if interrupted:
            stop_everything(self.live)
        lock = None
        if config.option.update_baselines and not interrupted:
            try:
                lock = update_lock(config.option.baselines_dir)
                lock.acquire()
            except (filelock.Timeout, OSError) as exc:
                lock = None
                bench = getattr(config, "_benchmarksession", None)
                if bench is not None:
                    bench.save = bench.autosave = None
                config.option.update_baselines = self.gate_options().update = False
                session.exitstatus = pytest.ExitCode.USAGE_ERROR
                config.stash[REFUSED] = (f"--update-baselines: another session holds {config.option.baselines_dir} "
                                         f"({exc}): nothing written to the baselines")
        try:
            return (yield)
        finally:
            if lock is not None:
                lock.release()
            if self.live is not None:  # a server no teardown stopped (an internal error): not left running
                from pagedbench.engines.vllm_server import STOP_GRACE_S  # httpx and the rest only when it ends

                self.live.stop_all(STOP_GRACE_S)
                self.live.deactivate()
