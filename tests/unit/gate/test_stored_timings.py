"""pytest-benchmark's stored runs merged into one per GPU, read back by pytest-benchmark's own loader."""

import json
import shutil
from pathlib import Path

import pytest
from pytest_benchmark.logger import Logger
from pytest_benchmark.storage.file import FileStorage

from pagedbench.cli import main
from pagedbench.errors import PagedBenchError
from pagedbench.gate import stored_timings as st

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[3]
MACHINE = "Linux-CPython-3.12-64bit"


def bench(fullname: str, mean: float) -> dict:
    name = fullname.split("::")[-1]
    return {"group": None, "name": name, "fullname": fullname, "params": None, "param": None, "extra_info": {},
            "options": {}, "stats": {"min": mean, "max": mean, "mean": mean, "stddev": 0.0, "rounds": 1,
                                     "median": mean, "iqr": 0.0, "q1": mean, "q3": mean, "iqr_outliers": 0,
                                     "stddev_outliers": 0, "outliers": "0;0", "ld15iqr": mean, "hd15iqr": mean,
                                     "ops": 1 / mean, "total": mean, "iterations": 1}}


def saved(when: str, node: str, *benches: dict) -> dict:
    return {"machine_info": {"node": node}, "commit_info": {"id": f"commit-{node}"},
            "benchmarks": list(benches), "datetime": when, "version": "5.2.3"}


def write(folder: Path, name: str, doc: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(doc, indent=4))
    return folder / name


@pytest.fixture
def chunks(tmp_path):
    """Three chunks as separate sessions save them: blocks, throughput, then throughput again."""
    folder = tmp_path / "h100" / MACHINE
    write(folder, "0001_baseline.json", saved("2026-11-23T09:17:00+00:00", "a", bench("t.py::blocks[bs16]", 1.0),
                                              bench("t.py::hf[b16]", 5.0)))
    write(folder, "0002_baseline.json", saved("2026-11-23T09:20:00+00:00", "b", bench("t.py::vllm[repeat]", 2.0)))
    write(folder, "0003_baseline.json", saved("2026-11-23T09:25:00+00:00", "c", bench("t.py::hf[b16]", 6.0)))
    return folder


def test_later_run_wins_and_newest_info_is_kept(chunks):
    merged = st.merge_files(sorted(chunks.glob("*.json"), reverse=True))  # file order does not matter: datetime does
    assert [(b["fullname"], b["stats"]["mean"]) for b in merged["benchmarks"]] == [
        ("t.py::blocks[bs16]", 1.0), ("t.py::hf[b16]", 6.0), ("t.py::vllm[repeat]", 2.0)]
    assert merged["machine_info"] == {"node": "c"} and merged["commit_info"] == {"id": "commit-c"}
    assert merged["datetime"] == "2026-11-23T09:25:00+00:00"
    assert list(merged) == ["machine_info", "commit_info", "benchmarks", "datetime", "version"]


def test_folder_becomes_one_run_that_compare_reads_whole(chunks):
    assert main(["merge-timings", str(chunks.parent)]) == 0
    assert [p.name for p in chunks.iterdir()] == ["0001_baseline.json"]
    # What --benchmark-compare does with no argument: the newest stored file of this machine.
    storage = FileStorage(chunks.parent, Logger(), default_machine_id=MACHINE)
    (_, newest), = list(storage.load())[-1:]
    assert {b["fullname"] for b in newest["benchmarks"]} == {"t.py::blocks[bs16]", "t.py::hf[b16]",
                                                             "t.py::vllm[repeat]"}
    assert st.merge_storage(chunks.parent) == []  # one run left: nothing more to merge


def test_out_writes_the_merge_of_named_files(chunks, tmp_path):
    out = tmp_path / "merged.json"
    assert main(["merge-timings", *map(str, sorted(chunks.glob("*.json"))), "--out", str(out)]) == 0
    assert len(json.loads(out.read_text())["benchmarks"]) == 3
    assert len(list(chunks.glob("*.json"))) == 3  # named files are read, not removed


def test_other_saves_are_left_alone(chunks):
    write(chunks, "0004_mine.json", saved("2026-11-23T09:30:00+00:00", "d", bench("t.py::other", 1.0)))
    st.merge_folder(chunks)
    assert sorted(p.name for p in chunks.iterdir()) == ["0001_baseline.json", "0004_mine.json"]


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("benchmarks"), "'benchmarks' missing"),
    (lambda d: d["benchmarks"][0].pop("fullname"), r"benchmarks\[0\] has no 'fullname'"),
    (lambda d: d.update(datetime="yesterday"), "not an ISO time"),
])
def test_bad_saved_run_names_file_and_field(chunks, mutate, message):
    path = chunks / "0002_baseline.json"
    doc = json.loads(path.read_text())
    mutate(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(PagedBenchError, match=f"0002_baseline.json: .*{message}"):
        st.merge_folder(chunks)
    assert len(list(chunks.glob("*.json"))) == 3  # nothing removed when the merge cannot be made


CHUNKED = """
def test_blocks(benchmark):
    benchmark(sum, range(10))

def test_throughput(benchmark):
    benchmark(sum, range(10))
"""


def test_chunked_update_runs_leave_one_stored_run(pytester, monkeypatch):
    """Two --update-baselines sessions, one chunk each, then --benchmark-compare sees both tests."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    shutil.copy(ROOT / "conftest.py", pytester.path / "conftest.py")
    pytester.makepyfile(test_chunks=CHUNKED)
    base = ["-p", "no:cacheprovider", "--trust-machine", "--baselines-dir", str(pytester.path / "baselines")]
    for chunk in ("blocks", "throughput"):
        result = pytester.runpytest_subprocess(*base, "-k", chunk, "--update-baselines")
        result.assert_outcomes(passed=1, deselected=1)
    stored = list((pytester.path / "baselines" / "cpu").glob("*/*.json"))
    assert [p.name for p in stored] == ["0001_baseline.json"]
    result.stdout.fnmatch_lines(["*pytest-benchmark run merged into*0001_baseline.json (removed 0002_baseline.json)"])
    compared = pytester.runpytest_subprocess(*base, "--benchmark-compare")
    compared.assert_outcomes(passed=2)
    for name in ("test_blocks", "test_throughput"):  # the table is sorted by time: one line at a time
        compared.stdout.fnmatch_lines([f"*{name} (0001_*"])
