"""The change-point comparison: every candidate on the same series, and the README's table is its output."""

import re
from pathlib import Path

import pytest

from pagedbench.errors import PagedBenchError
from pagedbench.history import detectors

ROOT = Path(__file__).resolve().parents[3]
OTAVA_MISSING = ("apache-otava is not installed: it is the optional compare-detectors extra and pins numpy 2.2.* "
                 "and scipy <1.17, so it lives in a venv of its own (see pagedbench/history/detectors.py)")


def test_comparison_has_every_importable_candidate():
    rows = detectors.compare(trials=10, n=30, seed=2)
    assert [r["detector"] for r in rows] == list(detectors.candidates())
    assert all(0 <= r["found"] <= r["stepped"] and 0 <= r["false_series"] <= r["flat"] for r in rows)


def test_readme_rows_are_what_the_comparison_gives():
    text = (ROOT / "README.md").read_text()
    start, end = (text.index(m) for m in detectors.MARKERS)
    block = text[start:end]
    trials, seed = map(int, re.search(r"--trials (\d+) --seed (\d+)", block).groups())
    rows = detectors.compare(trials, 30, seed)  # the candidates importable here; Otava's rows where it is
    for line in detectors.table(rows, trials, 30, seed).splitlines()[2:2 + len(rows)]:
        assert line in block, f"README's detector table is not the command's output: {line}"


def test_readme_table_is_not_written_without_otava(monkeypatch, tmp_path):
    monkeypatch.setattr(detectors, "otava_version", lambda: None)
    assert list(detectors.candidates()) == list(detectors.DETECTORS)
    readme = tmp_path / "README.md"
    readme.write_text("\n".join(detectors.MARKERS))
    with pytest.raises(PagedBenchError, match="Otava's rows"):
        detectors.write_readme(readme, "| table |")


def test_otava_candidates_find_a_clear_step_where_it_is():
    pytest.importorskip("otava.analysis", reason=OTAVA_MISSING)
    values = detectors.synthetic(30, 0.01, -0.08, 17, seed=4)  # 30 runs: shorter than Otava's 50-run window
    for name, detect in detectors.OTAVA.items():
        (step,) = detect(values)
        assert step.index == 17 and step.size == pytest.approx(-0.08, abs=0.01), name
    assert detectors.OTAVA.keys() <= {r["detector"] for r in detectors.compare(trials=5, n=30, seed=3)}
