"""`pytest` runs the suite's own tests, `pytest --benchmark-only` the benchmark tiers; naming a tier's path
runs it under plain pytest; --benchmark-skip leaves the benchmarks out. Nothing is skipped, it is deselected."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pagedbench.plugin import selection

ROOT = Path(__file__).resolve().parents[3]
ARGS, TESTPATHS = pytest.Config.ArgsSource.ARGS, pytest.Config.ArgsSource.TESTPATHS


def config(root: Path, *args: str, source=ARGS, only=False, skip=False, enable=False, cwd=None):
    return SimpleNamespace(
        rootpath=root, args=list(args), args_source=source, invocation_params=SimpleNamespace(dir=cwd or root),
        option=SimpleNamespace(benchmark_only=only, benchmark_skip=skip, benchmark_enable=enable))


@pytest.fixture
def items(tmp_path):
    def item(rel: str, benchmark: bool):
        return SimpleNamespace(path=tmp_path / rel, fixturenames=["benchmark"] if benchmark else ["tmp_path"],
                               name=f"{rel}:{'bench' if benchmark else 'plain'}")
    return [item("tests/unit/test_own.py", False),
            item("tests/benchmarks/test_tier.py", True), item("tests/benchmarks/test_tier.py", False),
            item("tests/benchmarks/test_other.py", True)]


def kept(cfg, items) -> list[str]:
    """Names of the items kept; an item outside the tier stands for what pytest collected beside it."""
    return [i.name for i in selection.select(cfg, items).keep]


@pytest.mark.parametrize("kwargs, args, source, expected", [
    # plain pytest: the suite's own tests only
    ({}, ["tests/unit", "tests/benchmarks"], TESTPATHS, ["tests/unit/test_own.py:plain"]),
    ({}, ["tests"], ARGS, ["tests/unit/test_own.py:plain"]),  # a folder above the tier does not name it
    # a path or node id under the tier names it
    ({}, ["tests/benchmarks"], ARGS,
     ["tests/unit/test_own.py:plain", "tests/benchmarks/test_tier.py:bench", "tests/benchmarks/test_tier.py:plain",
      "tests/benchmarks/test_other.py:bench"]),
    ({}, ["tests/benchmarks/test_tier.py::test_x[cpu]"], ARGS,
     ["tests/unit/test_own.py:plain", "tests/benchmarks/test_tier.py:bench", "tests/benchmarks/test_tier.py:plain"]),
    ({"enable": True}, ["tests"], ARGS, [
        "tests/unit/test_own.py:plain", "tests/benchmarks/test_tier.py:bench", "tests/benchmarks/test_tier.py:plain",
        "tests/benchmarks/test_other.py:bench"]),
    # --benchmark-only: what takes the benchmark fixture, wherever it is
    ({"only": True}, ["tests/unit", "tests/benchmarks"], TESTPATHS,
     ["tests/benchmarks/test_tier.py:bench", "tests/benchmarks/test_other.py:bench"]),
    ({"only": True, "skip": True}, ["tests"], ARGS,  # --benchmark-only overrides --benchmark-skip
     ["tests/benchmarks/test_tier.py:bench", "tests/benchmarks/test_other.py:bench"]),
    # --benchmark-skip: the rest
    ({"skip": True}, ["tests/unit", "tests/benchmarks"], TESTPATHS, ["tests/unit/test_own.py:plain"]),
    ({"skip": True}, ["tests/benchmarks"], ARGS, ["tests/unit/test_own.py:plain", "tests/benchmarks/test_tier.py:plain"]),
])
def test_what_each_command_runs(tmp_path, items, kwargs, args, source, expected):
    assert kept(config(tmp_path, *args, source=source, **kwargs), items) == expected


def test_paths_are_read_from_where_pytest_was_started(tmp_path, items):
    cfg = config(tmp_path, "test_other.py", cwd=tmp_path / "tests" / "benchmarks")
    assert kept(cfg, items) == ["tests/unit/test_own.py:plain", "tests/benchmarks/test_other.py:bench"]


def test_the_note_says_how_many_and_how_to_run_them(tmp_path, items):
    plain = selection.select(config(tmp_path, "tests/unit", "tests/benchmarks", source=TESTPATHS), items)
    assert plain.note().startswith("3 benchmark-tier cases deselected: `pytest --benchmark-only` runs them")
    only = selection.select(config(tmp_path, "tests", only=True), items)
    assert only.note().startswith("2 tests without the benchmark fixture deselected (--benchmark-only): `pytest`")
    assert selection.select(config(tmp_path, "tests/unit"), items[:1]).note() is None


TIER_TEST = """
def test_timed(benchmark, metrics, target):
    benchmark(lambda: None)
    metrics.metric("x", 1.0, "u", "higher")


def test_plain():
    pass
"""


def test_the_hooks_deselect_and_say_so(tmp_path):
    """Wired into pytest's collection: deselected, not skipped, and one line saying so."""
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tests" / "benchmarks").mkdir()
    (tmp_path / "tests" / "unit" / "test_own.py").write_text("def test_own():\n    pass\n")
    (tmp_path / "tests" / "benchmarks" / "test_tier.py").write_text(TIER_TEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\ntestpaths = tests/unit tests/benchmarks\n")
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--trust-machine",
                               f"--metrics-json={tmp_path / 'run.json'}", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout

    only = run("--benchmark-only")
    assert "2 tests without the benchmark fixture deselected" in only and "1 passed, 2 deselected" in only, only
    plain = run()
    assert "2 benchmark-tier cases deselected" in plain and "1 passed, 2 deselected" in plain, plain
    assert "skipped" not in plain + only
    # The unit tests measure nothing: the benchmark run's JSON is left in place.
    assert list(json.loads((tmp_path / "run.json").read_text())["tests"]) == ["tests/benchmarks/test_tier.py::test_timed[cpu]"]
