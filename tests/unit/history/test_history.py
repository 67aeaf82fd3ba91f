"""History and bisect: steps found in a metric's series, and the commit that made it slower."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pagedbench.history import changepoint
from pagedbench.history import series as history
from pagedbench.history.detectors import flat_series, stepped_series, synthetic

ROOT = Path(__file__).resolve().parents[3]


# ---- the detector on synthetic series (seeded noise 1-5 % CV, one step of 3-10 %) -----------------

@pytest.mark.parametrize("seed", range(3))
def test_every_step_of_3x_the_noise_is_found_within_2_points(seed):
    for values, at in stepped_series(trials=20, n=30, seed=seed):
        steps = changepoint.pelt(values)
        assert any(abs(s.index - at) <= 2 for s in steps), f"step at {at} missed in {values}"


def test_no_step_in_20_step_free_series():
    for values in flat_series(trials=20, n=30, seed=11):
        assert changepoint.pelt(values) == []


def test_step_reports_levels_size_and_significance():
    values = synthetic(30, 0.01, -0.08, 17, seed=4)
    (step,) = changepoint.pelt(values)
    assert step.index == 17 and step.size == pytest.approx(-0.08, abs=0.01) and step.significance > 10


# ---- history over run files ------------------------------------------------------------------

def run_doc(i, value, vllm="0.26.0"):
    return {"schema_version": 1, "slug": "h100", "gpu": {"slug": "h100"}, "versions": {"vllm": vllm},
            "commit": f"c{i:02d}", "started": f"2026-11-{i + 1:02d}T00:00:00+00:00", "tests": {
                "tests/benchmarks/test_throughput.py::test_vllm_throughput[h100-variable]": {
                    "outcome": "passed", "params": {}, "series": {}, "comparisons": [],
                    "metrics": {"output_tok_per_s": {"value": value, "unit": "tok/s", "direction": "higher"},
                                "blocks": {"value": 4096, "unit": "blocks", "direction": "equal"}}}}}


def test_history_names_the_step_and_what_changed(tmp_path):
    values = synthetic(16, 0.01, -0.12, 9, seed=1)
    for i, v in enumerate(values):
        (tmp_path / f"run-{i:02d}.json").write_text(json.dumps(run_doc(i, v, "0.26.0" if i < 9 else "0.27.0")))
    (series,) = history.collect(history.load_runs(tmp_path))  # exact counts are not a series
    lines = history.describe(series)
    assert "step at run 10" in lines[1] and "worse" in lines[1] and "vllm 0.26.0 -> 0.27.0" in lines[1]
    assert "suite c08 -> c09" in lines[1]
    (png,) = history.plot([series], tmp_path / "plots")
    assert png.name == "history_throughput.png" and png.stat().st_size > 0


@pytest.mark.parametrize("folder", ["history/cpu", "reports/h100/runs"])
def test_kept_history_is_one_device_with_throughput_series(folder):
    runs = history.load_runs(ROOT / folder)  # the folders the README's history plots are drawn from
    slug = folder.split("/")[1]
    assert {run["slug"] for _, run in runs} == {slug}
    series = history.collect(runs, k="test_vllm_throughput")
    assert series and any(len(s.points) > 1 for s in series)


def test_history_refuses_mixed_devices(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(run_doc(0, 1.0)))
    (tmp_path / "b.json").write_text(json.dumps({**run_doc(1, 1.0), "slug": "h200"}))
    with pytest.raises(Exception, match="one folder per slug"):
        history.load_runs(tmp_path)


# ---- bisect: a planted slowdown in a branch of this repository's history ---------------------------


def test_bisect_cli_rejects_an_unknown_revision(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pagedbench", "bisect", "--good", "no-such-rev", "--bad", "HEAD",
                           "--repo", str(ROOT), "--", "-k", "cpu"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "no-such-rev" in done.stderr
