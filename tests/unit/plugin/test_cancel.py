"""A cancelled session (SIGTERM from `timeout` or a CI runner, SIGINT from Ctrl-C) exits within 10 s,
leaves no process of its own behind and writes the run JSON with what finished. Stand-ins: a server of
a few lines of Python whose process group holds a child that ignores SIGTERM (as a resource tracker
may), and an engine-core-like child of the session that ignores it too."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[3]

SUITE_TEST = '''
import os, subprocess, sys, time
from pathlib import Path

sys.path.insert(0, os.environ["STANDINS_DIR"])
from standins import script, stand_in

STAND_IN = script("""
    subprocess.Popen([sys.executable, "-c",
                      "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
""")


def test_a_finished(metrics, target):
    metrics.metric("x", 1.0, "u", "higher")


def test_b_cancelled(metrics, target, tmp_path):
    server = stand_in(tmp_path / "s.log", STAND_IN).start()
    core = subprocess.Popen([sys.executable, "-c",
                             "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    Path(os.environ["READY_FILE"]).write_text(f"{server.proc.pid} {core.pid}")
    time.sleep(600)
'''


def _suite(tmp_path: Path) -> Path:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text((ROOT / "conftest.py").read_text())
    (suite / "test_cancel_me.py").write_text(SUITE_TEST)
    return suite


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_cancelled_session_stops_everything_and_keeps_its_run(tmp_path, sig):
    suite, ready, run = _suite(tmp_path), tmp_path / "ready", tmp_path / "run.json"
    session = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--trust-machine",
                                f"--metrics-json={run}", f"--serving-logs={tmp_path / 'logs'}",
                                f"--baselines-dir={tmp_path / 'baselines'}", "-k", "cpu", "test_cancel_me.py"],
                               cwd=suite, env={**os.environ, "PYTHONPATH": str(ROOT), "READY_FILE": str(ready),
                                                "STANDINS_DIR": str(ROOT / "tests" / "unit")},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not ready.exists() and session.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ready.exists(), session.communicate(timeout=30)[0] if session.poll() is not None else "never ready"
        time.sleep(0.5)
        ours = psutil.Process(session.pid).children(recursive=True)
        # the server's group (server, its SIGTERM-ignoring child) and the engine-core-like child
        assert len(ours) >= 3, ours
        t0 = time.monotonic()
        session.send_signal(sig)
        out, _ = session.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        if session.poll() is None:
            session.kill()
    left = [p for p in ours if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for p in left:
        p.kill()
    assert took <= 10.0, f"exit took {took:.1f} s\n{out}"
    assert not left, f"left behind: {left}\n{out}"
    assert session.returncode == pytest.ExitCode.INTERRUPTED, out
    doc = json.loads(run.read_text())
    assert doc["interrupted"] is True
    assert doc["tests"]["test_cancel_me.py::test_a_finished[cpu]"]["outcome"] == "passed", doc["tests"]
