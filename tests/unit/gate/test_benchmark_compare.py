"""The one baseline store and pytest-benchmark: timing stats in, --benchmark-compare fed from it, and the
former layout (baselines/<slug>/<machine id>/NNNN_*.json) read once."""

import json
import shutil
from pathlib import Path

import pytest
from pytest_benchmark.logger import Logger
from pytest_benchmark.storage.file import FileStorage
from pytest_benchmark.utils import get_machine_id

from pagedbench.cli import main
from pagedbench.device import current_device
from pagedbench.errors import PagedBenchError
from pagedbench.gate import baseline_file as bl
from pagedbench.gate import benchmark_compare as bc
from pagedbench.gate.baseline_merge import middle_timing

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[3]
H100 = {"slug": "h100", "name": "NVIDIA H100 80GB HBM3", "power_limit_w": 700.0}
H100_ID = "NVIDIA H100 80GB HBM3, 700 W"


def stats(median: float, rounds: int = 5) -> dict:
    return {"min": median / 2, "max": median * 2, "mean": median, "stddev": 0.0, "rounds": rounds, "median": median,
            "iqr": 0.0, "q1": median, "q3": median, "iqr_outliers": 0, "stddev_outliers": 0, "outliers": "0;0",
            "ld15iqr": median, "hd15iqr": median, "ops": 1 / median, "total": median * rounds, "iterations": 1}


def saved(*benches: tuple[str, float, dict], gpu=H100) -> dict:
    return {"machine_info": {"node": "n", "gpu": gpu, "software": {"vllm": "0.26.0"}}, "commit_info": {},
            "datetime": "2026-11-23T09:17:00+00:00", "version": "5.2.3",
            "benchmarks": [{"fullname": f, "name": f.split("::")[-1], "extra_info": extra, "stats": stats(m)}
                           for f, m, extra in benches]}


def old_layout(tmp_path: Path, doc: dict, slug: str = "h100") -> Path:
    folder = tmp_path / "baselines" / slug / "Linux-CPython-3.12-64bit"
    folder.mkdir(parents=True)
    (folder / "0001_baseline.json").write_text(json.dumps(doc, indent=4))
    return folder.parent


def test_import_reads_old_ids_keeps_metrics_and_leaves_contaminated_out(tmp_path):
    metrics = {"tests/benchmarks/test_throughput.py::test_hf[h100]": {
        "tok_s": bl.Metric(35.0, "tok/s", "higher"), "blocks": bl.Metric(16.0, "blocks", "equal", portable=True)}}
    bl.write_atomic(tmp_path / "baselines" / "h100.json", bl.merge(None, "h100", H100, {"vllm": "0.27.0"}, metrics))
    folder = old_layout(tmp_path, saved(("tests/test_throughput.py::test_hf[h100]", 0.5, {}),
                                        ("tests/test_throughput.py::test_busy[h100]", 0.9, {"contaminated": "x"})))
    assert main(["baseline", "--baselines-dir", str(tmp_path / "baselines"), "--import-timings", str(folder)]) == 0
    base = bl.load(tmp_path / "baselines" / "h100.json")
    machine = base.machine(H100_ID)
    assert machine.timing("tests/benchmarks/test_throughput.py::test_hf[h100]") == stats(0.5)
    assert set(machine.timings) == {"tests/benchmarks/test_throughput.py::test_hf[h100]"}  # the busy one stayed out
    assert machine.tests == {k: {"tok_s": v["tok_s"]} for k, v in metrics.items()}
    assert base.versions == {"vllm": "0.27.0"}  # an import writes no figure: the versions of the figures stay


def test_import_of_an_unknown_machine_files_it_under_its_own_identity(tmp_path):
    cpu = {"slug": "cpu", "name": "x86_64"}
    folder = old_layout(tmp_path, saved(("t.py::test_a[cpu]", 0.1, {}), gpu=cpu), slug="cpu")
    bc.import_stored_runs(folder, tmp_path / "baselines")
    base = bl.load(tmp_path / "baselines" / "cpu.json")
    assert list(base.machines) == ["x86_64 (cores and ISA not recorded)"] and not base.tests


def test_import_names_the_file_and_field_of_bad_stats(tmp_path):
    doc = saved(("t.py::test_a[h100]", 0.1, {}))
    doc["benchmarks"][0]["stats"]["rounds"] = 0
    folder = old_layout(tmp_path, doc)
    with pytest.raises(PagedBenchError, match=r"0001_baseline.json: benchmarks\[0\]\.stats\.rounds: 0 is less than"):
        bc.import_stored_runs(folder, tmp_path / "baselines")
    assert not (tmp_path / "baselines" / "h100.json").exists()


def test_compare_prefers_this_identity_and_falls_back_to_another():
    base = bl.merge(None, "h100", H100, {}, {}, timings={"t::a": stats(1.0), "t::b": stats(2.0)})
    base = bl.merge(base, "h100", {**H100, "power_limit_w": 350.0}, {}, {}, timings={"t::a": stats(3.0)})
    found = bc.stored_timings(base, "NVIDIA H100 80GB HBM3, 350 W")
    assert found == {"t::a": ("NVIDIA H100 80GB HBM3, 350 W", stats(3.0)), "t::b": (H100_ID, stats(2.0))}
    assert bc.stored_timings(base, "another GPU")["t::a"] == ("NVIDIA H100 80GB HBM3, 350 W", stats(3.0))


def test_the_synthesised_run_reads_as_pytest_benchmark_reads_a_saved_run(tmp_path):
    base = bl.merge(None, "h100", H100, {}, {}, timings={"t::a": stats(1.0)})
    bl.write_atomic(tmp_path / "h100.json", base)
    bl.write_atomic(tmp_path / "h100x2.json", bl.merge(None, "h100x2", H100, {}, {},
                                                       timings={"t::tp[h100x2]": stats(4.0)}))
    folder = bc.compare_storage(tmp_path, "h100", H100_ID)
    try:
        storage = FileStorage(folder, Logger(), default_machine_id=get_machine_id())
        ((_, run),) = list(storage.load())[-1:]  # what --benchmark-compare with no argument loads
        assert {b["fullname"]: b["stats"]["median"] for b in run["benchmarks"]} == {"t::a": 1.0, "t::tp[h100x2]": 4.0}
    finally:
        shutil.rmtree(folder)


def test_a_baseline_from_several_runs_keeps_the_median_runs_timing():
    assert middle_timing([stats(3.0), stats(1.0), stats(2.0)]) == stats(2.0)
    assert middle_timing([stats(3.0), stats(1.0)]) == stats(1.0)


# ---- end to end: chunked --update-baselines sessions, then --benchmark-compare -----------------

CHUNKED = """
def test_blocks(benchmark, metrics, target):
    benchmark(sum, range(10))
    metrics.exact("blocks", 16, "blocks")

def test_throughput(benchmark, metrics, target):
    benchmark(sum, range(10))
    metrics.metric("tok_s", 5.0, "tok/s", "higher")
"""


def test_chunked_updates_then_compare_shows_both_from_the_one_store(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    shutil.copy(ROOT / "conftest.py", pytester.path / "conftest.py")
    pytester.makepyfile(test_chunks=CHUNKED)
    baselines = pytester.path / "baselines"
    base = ["-p", "no:cacheprovider", "--trust-machine", "--baselines-dir", str(baselines), "-k", "cpu"]
    for chunk in ("blocks", "throughput"):
        pytester.runpytest_subprocess(*base, "-k", chunk, "--update-baselines").assert_outcomes(passed=1, deselected=1)
    assert [p.name for p in baselines.iterdir() if not p.name.startswith(".")] == ["cpu.json"]  # no storage folder
    machine = bl.load(baselines / "cpu.json").machine(current_device().identity)
    assert {t.split("::")[-1] for t in machine.timings if machine.timing(t)["rounds"] >= 1} == {
        "test_blocks[cpu]", "test_throughput[cpu]"}
    compared = pytester.runpytest_subprocess(*base, "--benchmark-compare")
    compared.assert_outcomes(passed=2)
    for name in ("test_blocks", "test_throughput"):  # the table is sorted by time: one line at a time
        compared.stdout.fnmatch_lines([f"*{name}*(0001_baselin*"])
    assert not list(pytester.path.glob(".pagedbench-compare-*"))  # the synthesised storage is gone with the session
    saved_runs = pytester.path / "mine"
    pytester.runpytest_subprocess(*base, "--benchmark-storage", str(saved_runs), "--benchmark-save", "x")
    assert [p.name for p in saved_runs.glob("*/*.json")] == ["0001_x.json"]  # pytest-benchmark's own history
