"""A neighbour that starts during a timed region is caught, and its timings reach neither baseline
store (baselines/<slug>.json, pytest-benchmark's stored run). Stand-ins: a spinning process outside
this process tree, a fake NVML."""

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

from pagedbench.gate import baseline_file as bl
from pagedbench.gate.gate import Gate, Options
from pagedbench.meters import machine_health as health
from pagedbench.meters import neighbours as watch
from pagedbench.metrics.recorder import Recorder

TEST = "tests/test_x.py::test_x[cpu]"
CPU = {"slug": "cpu", "name": "Xeon A", "identity": "GenuineIntel Xeon A, 2 cores"}

# Forked twice: the spinner's parent exits, so the spinner is no descendant of ours, as a CI job beside ours.
SPINNER = """
import os, sys, time
if os.fork() == 0:
    print(os.getpid(), flush=True)
    os.close(1)
    os.close(2)
    end = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < end:
        pass
"""


def spin_outside(seconds: float) -> int:
    return int(subprocess.run([sys.executable, "-c", SPINNER, str(seconds)], capture_output=True, text=True,
                              timeout=30).stdout)


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_the_watch_sees_a_neighbour_that_starts_mid_region():
    w = watch.Watch(is_gpu=False, interval_s=0.25).start()
    time.sleep(0.6)  # the region starts quiet, as the idle sample saw it
    pid = spin_outside(3.0)
    try:
        time.sleep(2.0)
    finally:
        seen, problems = w.stop()
        kill(pid)
    assert seen["other_cpu_cores_peak"] > health.CPU_BUSY_CORES, seen
    assert any(n["pid"] == pid for n in seen["neighbours"]), seen
    assert problems and "during the timed work" in problems[0] and f"pid {pid}" in problems[0]


def test_the_watch_leaves_our_own_children_out():
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # a served model's engine core, say
    try:
        w = watch.Watch(is_gpu=False, interval_s=0.25).start()
        time.sleep(1.5)
        seen, _ = w.stop()
    finally:
        child.kill()
        child.wait()
    assert all(n["pid"] != child.pid for n in seen["neighbours"]), seen


def test_a_neighbour_mid_test_never_becomes_the_baseline(tmp_path, monkeypatch):
    """The idle sample before the test is clean; the neighbour starts during the timed work. Before the
    watch, the test's rates went into cpu.json as this machine's baseline."""
    monkeypatch.setattr(watch, "INTERVAL_S", 0.25)
    monkeypatch.setattr(health, "sample_before", lambda is_gpu: health.Sample(other_cpu_cores=0.0, steal_share=0.0))
    gate = Gate(tmp_path, CPU, {}, Options(update=True, metrics_json=tmp_path / "run.json"))
    rec = Recorder(TEST, "cpu")
    gate.before(rec)
    pid = spin_outside(3.0)
    try:
        time.sleep(2.0)
        rec.metric("req_per_s", 3.65, "req/s", "higher", 0.01)
        assert gate.judge(rec) is None
    finally:
        kill(pid)
    gate.record_outcome(TEST, "passed", rec)
    gate.finish(interrupted=False)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["tests"][TEST]["contaminated"], run["tests"][TEST]
    assert any(h.get("during") for h in run["tests"][TEST]["health"])
    assert not (tmp_path / "cpu.json").exists()
    assert "contaminated" in gate.skipped_for_baseline[0]


def fake_nvml(monkeypatch, foreign_after: float):
    """pynvml with one GPU where a foreign process appears `foreign_after` seconds from now."""
    t0 = time.monotonic()
    proc = types.SimpleNamespace(pid=999_999)
    m = types.ModuleType("pynvml")
    m.NVMLError = type("NVMLError", (Exception,), {})
    m.NVML_CLOCK_SM = 1
    m.nvmlInit = m.nvmlShutdown = lambda: None
    m.nvmlDeviceGetHandleByIndex = lambda i: object()
    m.nvmlDeviceGetComputeRunningProcesses = lambda h: [proc] if time.monotonic() - t0 > foreign_after else []
    m.nvmlDeviceGetGraphicsRunningProcesses = lambda h: []
    m.nvmlDeviceGetCurrentClocksEventReasons = lambda h: 0
    m.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=100)
    m.nvmlDeviceGetClockInfo = lambda h, kind: 1980
    monkeypatch.setitem(sys.modules, "pynvml", m)


def test_on_a_gpu_the_watch_asks_nvml_during_the_work(monkeypatch):
    fake_nvml(monkeypatch, foreign_after=0.5)
    assert health.gpu_sample().other_processes == []  # the idle sample before the work: clean
    w = watch.Watch(is_gpu=True, interval_s=0.2).start()
    time.sleep(1.0)
    seen, problems = w.stop()
    assert seen["other_processes"] == [999_999] and seen["sm_clock_mhz_max"] == 1980
    assert problems == ["other processes on the GPU during the timed work: [999999]"]


# ---- the baseline store ---------------------------------------------------------------------

BENCH_TEST = '''
def test_clean(benchmark, metrics, target):
    benchmark(lambda: None)
    metrics.metric("x", 1.0, "u", "higher")


def test_busy(benchmark, metrics, target):
    metrics.problems.append("other processes used 1.00 cores during the timed work (stand-in)")
    benchmark(lambda: None)
    metrics.metric("x", 1.0, "u", "higher")
'''


def test_contaminated_timings_stay_out_of_the_stored_run(tmp_path):
    """With --update-baselines, the busy test's figures and timing must not reach baselines/cpu.json."""
    root = Path(__file__).resolve().parents[3]
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text((root / "conftest.py").read_text())
    (suite / "test_b.py").write_text(BENCH_TEST)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--benchmark-only",
                          "--trust-machine", "--update-baselines", f"--baselines-dir={tmp_path / 'baselines'}",
                          f"--metrics-json={tmp_path / 'run.json'}", "-k", "cpu", "test_b.py"],
                         cwd=suite, env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    base = bl.load(tmp_path / "baselines" / "cpu.json")
    timed = [t for m in base.machines.values() for t in m.timings if m.timing(t)]
    assert timed == ["test_b.py::test_clean[cpu]"], timed
    assert not any("test_busy" in t for m in base.machines.values() for t in m.tests)
