"""The regression gate, proven on recorded and synthetic runs (no GPU needed)."""

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pagedbench.device import current_device, slug_for
from pagedbench.errors import BaselineError
from pagedbench.gate import baseline_file as bl

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[3]


def metric(value, spread=0.005, direction="higher", floor=0.02):
    return bl.Metric(value, "tok/s", direction, spread, floor)


def test_planted_3pct_regression_fails():
    (c,) = bl.compare("t", {"tok_s": metric(100.0)}, {"tok_s": metric(97.0)})
    assert c.status == "regressed"
    assert c.tolerance == pytest.approx(0.02)


def test_one_pct_jitter_never_alarms():
    rng = random.Random(1234)
    alarms = 0
    for _ in range(5000):
        now = 100.0 * (1 + rng.uniform(-0.01, 0.01))
        (c,) = bl.compare("t", {"tok_s": metric(100.0)}, {"tok_s": metric(now)})
        alarms += c.status != "ok"
    assert alarms == 0


def test_improvement_passes_and_says_so():
    (c,) = bl.compare("t", {"tok_s": metric(100.0)}, {"tok_s": metric(110.0)})
    assert c.status == "improved"
    (c,) = bl.compare("t", {"lat": metric(100.0, direction="lower")}, {"lat": metric(90.0, direction="lower")})
    assert c.status == "improved"


def test_exact_counts_fail_on_any_change():
    exact = metric(2048, spread=0, direction="equal", floor=0)
    (c,) = bl.compare("t", {"blocks": exact}, {"blocks": metric(2047, spread=0, direction="equal", floor=0)})
    assert c.status == "regressed"


def test_tolerance_follows_the_noisier_spread():
    (c,) = bl.compare("t", {"tok_s": metric(100.0, spread=0.05)}, {"tok_s": metric(90.0, spread=0.001)})
    assert c.tolerance == pytest.approx(0.15) and c.status == "ok"


def test_failure_table_is_readable():
    rows = bl.compare("t", {"tok_s": metric(100.0)}, {"tok_s": metric(97.0)})
    table = bl.format_table(rows)
    header = table.splitlines()[0].split()
    assert header == ["metric", "baseline", "now", "change", "tolerance", "better", "status"]
    assert "-3.00%" in table and "REGRESSED" in table


def good_doc():
    return {"schema_version": bl.SCHEMA_VERSION, "slug": "h100", "versions": {}, "machines": {},
            "tests": {"t[h100]": {"metrics": {"tok_s": {"value": 1.0, "unit": "tok/s", "direction": "higher"}}}}}


def tok_s(d):
    return d["tests"]["t[h100]"]["metrics"]["tok_s"]


def machine(d):
    """The test's entry under a machine, where what measured it is kept."""
    d["machines"]["H100, 700 W"] = {"device": {}, "versions": {}, "tests": {"t[h100]": {"metrics": {}}}}
    return d["machines"]["H100, 700 W"]["tests"]["t[h100]"]


FIELD = r"tests\['t\[h100\]'\]\.metrics\.tok_s"  # the field as the message names it


@pytest.mark.parametrize("mutate, message", [
    (lambda d: "{not json", "not valid JSON"),
    (lambda d: {**d, "schema_version": 99}, "schema_version is 99"),
    (lambda d: {**d, "schema_version": True}, "schema_version is True"),
    (lambda d: tok_s(d).update(value=float("nan")) or d, FIELD + r"\.value is NaN, not a finite number"),
    (lambda d: tok_s(d).update(value=float("inf")) or d, FIELD + r"\.value is Infinity, not a finite number"),
    (lambda d: json.dumps(d).replace('"value": 1.0', '"value": 1e999'), FIELD + r"\.value is 1e999, not a finite"),
    (lambda d: tok_s(d).update(value=-1) or d, FIELD + r"\.value: -1 is less than the minimum of 0"),
    (lambda d: tok_s(d).update(value="fast") or d, FIELD + r"\.value: 'fast' is not of type 'number'"),
    (lambda d: tok_s(d).update(direction="up") or d, FIELD + r"\.direction: 'up' is not one of"),
    (lambda d: tok_s(d).pop("unit") and d, FIELD + ": 'unit' is a required property"),
    (lambda d: tok_s(d).update(runs=True) or d, FIELD + r"\.runs: True is not of type 'integer'"),
    (lambda d: tok_s(d).update(machines=-1) or d, FIELD + r"\.machines: -1 is less than the minimum of 0"),
    (lambda d: tok_s(d).update(gated="no") or d, FIELD + r"\.gated: 'no' is not of type 'boolean'"),
    (lambda d: machine(d).update(commit=3) or d, r"\.commit: 3 is not of type 'string'"),
    (lambda d: machine(d).update(settings={"a": 1}) or d, r"\.settings: \{'a': 1\} is not of type 'array'"),
    (lambda d: machine(d).update(timing_stats={"min": 1}) or d, r"timing_stats: 'max' is a required"),
    (lambda d: d["tests"]["t[h100]"].update(commit="c") or d, r"tests\['t\[h100\]'\]: Additional properties"),
    (lambda d: (d.pop("machines"), d)[1], "'machines' is a required property"),
])
def test_bad_baseline_names_file_and_field(tmp_path, mutate, message):
    doc = mutate(good_doc())
    path = tmp_path / "h100.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, allow_nan=True))
    with pytest.raises(BaselineError, match=message) as err:
        bl.load(path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)


def test_schema_2_baseline_reads_as_it_did(tmp_path):
    doc = {"schema_version": 2, "slug": "h100", "versions": {}, "tests": {"t": {"blocks": {
        "value": 4096, "unit": "blocks", "direction": "equal", "floor": 0.0}}},
        "machines": {"H100, 700 W": {"device": {}, "versions": {}, "tests": {"t": {"tok_s": {
            "value": 5.0, "unit": "tok/s", "direction": "higher"}}}}}}
    base = bl.parse(json.dumps(doc))
    portable, bound = base.metrics_for("t", "H100, 700 W")
    assert portable["blocks"].portable and not bound["tok_s"].portable and bound["tok_s"].gated
    assert json.loads(base.to_json())["schema_version"] == 3
    # v2 nested metrics straight under the test id: read as v3, that is a metric named 'blocks' lacking 'metrics'
    with pytest.raises(BaselineError, match=r"tests\.t: 'metrics' is a required property"):
        bl.parse(json.dumps({**doc, "schema_version": 3}))


@pytest.mark.parametrize("path", sorted((ROOT / "baselines").glob("*.json")), ids=lambda p: p.name)
def test_every_committed_baseline_validates_and_round_trips(path):
    base = bl.load(path)
    assert base.slug == path.stem and (base.tests or base.machines)
    assert bl.parse(base.to_json()).to_json() == base.to_json()


def test_interrupted_write_leaves_old_file_identical(tmp_path, monkeypatch):
    path = tmp_path / "h100.json"
    old = bl.parse(json.dumps(good_doc()))
    bl.write_atomic(path, old)
    before = path.read_bytes()
    new = bl.merge(old, "h100", {"slug": "h100", "name": "H100"}, {}, {"t2[h100]": {"x": metric(5.0)}})

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bl.write_atomic(path, new)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["h100.json"]  # no temporary left behind


def test_baseline_file_is_stable_and_sorted(tmp_path):
    b = bl.merge(None, "h100", {"slug": "h100", "name": "H100"}, {"torch": "2.11"},
                 {"z[h100]": {"b": metric(1.0), "a": metric(2.0)}, "a[h100]": {"c": metric(3.0)}})
    text = b.to_json()
    assert text == bl.parse(text).to_json()
    assert text.index('"a[h100]"') < text.index('"z[h100]"')


@pytest.mark.parametrize("name, slug", [
    ("NVIDIA H100 80GB HBM3", "h100"), ("NVIDIA H200", "h200"), ("NVIDIA A100-SXM4-80GB", "a100-80gb"),
    ("NVIDIA L40S", "l40s"), ("NVIDIA H100 NVL", "h100-nvl"), ("NVIDIA Quantum Widget 9", "quantum-widget-9"),
    ("", "unknown-gpu"),
])
def test_gpu_slugs(name, slug):
    assert slug_for(name) == slug


@pytest.mark.parametrize("slug", ["h100", "h200", "cpu"])
def test_k_slug_selects_only_that_slug(slug):
    # --trust-machine: no CPU speed probe (a torch import and 0.3 s of matmuls) for a collection
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "--trust-machine", "--all-devices", "-k", slug, "tests/benchmarks/test_vllm_block_pool.py",
                          "tests/benchmarks/test_throughput.py"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    ids = [line for line in out.splitlines() if "::" in line]
    assert ids and all(f"[{slug}-" in i for i in ids)


# ---- the gate end to end: a pytest session with the suite's conftest and a planted baseline ------

GATED_TEST = """
def test_speed(metrics, target):
    metrics.metric("tok_s", {value}, "tok/s", "higher", spread=0.005)
"""


@pytest.fixture
def gated(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the subprocess imports pagedbench from this checkout
    shutil.copy(ROOT / "conftest.py", pytester.path / "conftest.py")
    base = bl.merge(None, "cpu", current_device().as_dict(), {},
                    {"test_speed.py::test_speed[cpu]": {"tok_s": metric(100.0)}})
    bl.write_atomic(pytester.path / "baselines" / "cpu.json", base)

    def run(value, *args):
        pytester.makepyfile(test_speed=GATED_TEST.format(value=value))
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "cpu", "--trust-machine",
                                             "--baselines-dir", str(pytester.path / "baselines"), *args)
    return run


def test_gate_fails_a_regression_with_a_table(gated):
    result = gated(97.0)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*regression against*cpu.json*", "*metric*baseline*now*change*tolerance*",
                                 "*tok_s*100*97*-3.00%*REGRESSED*"])


def test_gate_passes_jitter_and_reports_improvement(gated):
    gated(100.7).assert_outcomes(passed=1)
    result = gated(120.0)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*improved*tok_s*", "*--update-baselines*"])


def test_gate_update_writes_merged_baseline(gated, pytester):
    gated(120.0, "--update-baselines").assert_outcomes(passed=1)
    written = bl.load(pytester.path / "baselines" / "cpu.json")
    _, bound = written.metrics_for("test_speed.py::test_speed[cpu]", current_device().identity)
    assert bound["tok_s"].value == 120.0
    gated(120.0).assert_outcomes(passed=1)


FAILS_INSIDE_TIMING = """
import pytest

def test_speed(benchmark, metrics, target):
    # what start_engine does when vLLM cannot start: pytest.fail inside the timed call
    benchmark.pedantic(lambda: pytest.fail("vLLM failed to start: CUBLAS_STATUS_EXECUTION_FAILED", pytrace=False),
                       rounds=1, iterations=1)
    metrics.metric("tok_s", 100.0, "tok/s", "higher", spread=0.005)

def test_other(benchmark, metrics, target):
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    metrics.metric("tok_s", 100.0, "tok/s", "higher", spread=0.005)
"""


def test_a_test_failing_inside_its_timing_keeps_the_run(gated, pytester):
    """pytest.fail is no Exception to pytest-benchmark: its empty stats crashed the session end (seen on
    2xH200: no failure summary, no run file, no saved timings). Now the failure is summarised, the run
    file holds the failed test with its reason, and the other test's timing is saved."""
    pytester.makepyfile(test_speed=FAILS_INSIDE_TIMING)
    run_json = pytester.path / "run.json"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "cpu", "--trust-machine", "--benchmark-only",
                                           "--baselines-dir", str(pytester.path / "baselines"),
                                           "--metrics-json", str(run_json), "--benchmark-storage",
                                           f"file://{pytester.path / 'store'}", "--benchmark-save", "x")
    result.assert_outcomes(failed=1, passed=1)
    assert "min() iterable argument is empty" not in result.stdout.str() + result.stderr.str()
    entry = json.loads(run_json.read_text())["tests"]["test_speed.py::test_speed[cpu]"]
    assert entry["outcome"] == "failed" and "CUBLAS_STATUS_EXECUTION_FAILED" in entry["failure"]
    (saved,) = (pytester.path / "store").glob("*/0001_x.json")
    assert [b["name"] for b in json.loads(saved.read_text())["benchmarks"]] == ["test_other[cpu]"]


def test_gate_without_baseline_says_how_to_record(gated, pytester):
    (pytester.path / "baselines" / "cpu.json").unlink()
    gated(100.0).stdout.fnmatch_lines(["*no baseline for cpu: record one with*--update-baselines*"])
    gated(100.0, "--require-baseline").assert_outcomes(failed=1)


def test_gate_refuses_corrupt_baseline_before_running(gated, pytester):
    (pytester.path / "baselines" / "cpu.json").write_text("{broken")
    result = gated(100.0)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cpu.json: not valid JSON*"])
