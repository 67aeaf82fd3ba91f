"""The run JSON: what the gate writes is what the tools read back."""

import json
import shutil
from pathlib import Path

import pytest

from pagedbench.errors import PagedBenchError
from pagedbench.gate import run_file
from pagedbench.gate.gate import Gate, Options
from pagedbench.metrics.recorder import Recorder

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[3]
DEVICE = {"slug": "cpu", "name": "SYNTHETIC CPU", "identity": "synthetic, 2 cores"}
# The format's keys as the readers (report, readme, baseline, history) know them; a change here is a new schema.
KEYS = ["commit", "finished", "gpu", "identity", "interrupted", "schema_version", "slug", "started", "tests",
        "versions"]


def test_gate_writes_what_load_run_reads(tmp_path):
    path = tmp_path / "runs" / "cpu-last.json"
    gate = Gate(tmp_path, DEVICE, {"vllm": "0.0-synthetic"}, Options(sample_health=False, metrics_json=path),
                commit="abc1234")
    rec = Recorder("tests/test_x.py::test_x[cpu]", "cpu")
    rec.exact("num_gpu_blocks", 2048, "blocks")
    gate.judge(rec)
    gate.record_outcome(rec.test_id, "passed")
    gate.finish(interrupted=False)

    assert gate.run_path == path and not path.with_suffix(".json.tmp").exists()
    text = path.read_text()
    doc = run_file.load_run(path)
    assert text == json.dumps(doc, indent=2, sort_keys=True) + "\n"  # sorted keys, two spaces, a final newline
    assert list(doc) == KEYS
    assert doc["schema_version"] == run_file.RUN_SCHEMA_VERSION == 1
    assert doc["slug"] == "cpu" and doc["commit"] == "abc1234" and doc["interrupted"] is False
    assert doc["tests"][rec.test_id]["metrics"]["num_gpu_blocks"]["value"] == 2048


INTERRUPTED = """
def test_done(benchmark, metrics, target):
    benchmark.pedantic(lambda: None, rounds=2, iterations=1)
    metrics.exact("num_gpu_blocks", 2048, "blocks")

def test_stopped(benchmark, metrics, target):
    def timed():
        raise KeyboardInterrupt  # what Ctrl-C (or `timeout -s INT`) does inside a timed call
    benchmark.pedantic(timed, rounds=1, iterations=1)

def test_never_ran(metrics, target):
    metrics.exact("num_gpu_blocks", 1, "blocks")
"""


def test_ctrl_c_inside_a_timed_call_keeps_what_finished(pytester, monkeypatch):
    """Seen on an H200 (`timeout -s INT` in a settings run; docs/hardware-notes.md): pytest-benchmark's save crashed on the
    benchmark left without a round, and the run JSON of the tests that had finished was never written."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    shutil.copy(ROOT / "conftest.py", pytester.path / "conftest.py")
    pytester.makepyfile(test_interrupted=INTERRUPTED)
    run_json, saved = pytester.path / "run.json", pytester.path / "bench.json"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--trust-machine", "-k", "cpu",
                                           "--baselines-dir", str(pytester.path / "baselines"),
                                           "--metrics-json", str(run_json), "--benchmark-json", str(saved))
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    doc = run_file.load_run(run_json)
    assert doc["interrupted"] is True
    assert doc["tests"]["test_interrupted.py::test_done[cpu]"]["metrics"]["num_gpu_blocks"]["value"] == 2048
    assert "test_interrupted.py::test_never_ran[cpu]" not in doc["tests"]
    names = [b["name"] for b in json.loads(saved.read_text())["benchmarks"]]
    assert names == ["test_done[cpu]"]  # pytest-benchmark's own file too, without the unmeasured one


KEPT_RUNS = sorted(ROOT.glob("reports/*/runs/*.json"))
HISTORY = sorted(ROOT.glob("history/*/*.json"))


@pytest.mark.parametrize("path", KEPT_RUNS + HISTORY, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_committed_run_validates(path):
    doc = run_file.load_run(path, "history" if path in HISTORY else "run")
    assert doc["tests"]


def good_run() -> dict:
    return {"schema_version": 1, "slug": "cpu", "gpu": {}, "versions": {}, "tests": {"t[cpu]": {
        "outcome": "passed", "params": {"rate": 1.0},
        "metrics": {"tok_s": {"value": 1.0, "unit": "tok/s", "direction": "higher"}}}}}


@pytest.mark.parametrize("text, message", [
    (lambda d: json.dumps(d).replace('"rate": 1.0', '"rate": Infinity'), None),  # an offered rate: all at once
    (lambda d: json.dumps(d).replace('"value": 1.0', '"value": NaN'),
     r"tests\['t\[cpu\]'\]\.metrics\.tok_s\.value is NaN, not a finite number"),
    (lambda d: json.dumps({**d, "slug": "../x"}), r"slug: '\.\./x' does not match"),
    (lambda d: (d["tests"]["t[cpu]"].update(outcome="ok"), json.dumps(d))[1], r"\.outcome: 'ok' is not one of"),
    (lambda d: (d["tests"]["t[cpu]"].update(series={"s": [[0, 1, 2]]}), json.dumps(d))[1],
     r"tests\['t\[cpu\]'\]\.series\.s\[0\]: \[0, 1, 2\] is too long"),
    (lambda d: (d["tests"]["t[cpu]"].update(timing_stats={"min": "fast"}), json.dumps(d))[1], r"timing_stats"),
])
def test_a_bad_run_names_file_and_field(tmp_path, text, message):
    path = tmp_path / "run.json"
    path.write_text(text(good_run()))
    if message is None:
        assert run_file.load_run(path)["tests"]["t[cpu]"]["params"]["rate"] == float("inf")
        return
    with pytest.raises(PagedBenchError, match=message) as err:
        run_file.load_run(path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)
