"""`python -m pagedbench readme`: the README's generated blocks (report/readme.py).

The runs are SYNTHETIC (synthetic_runs.py): every number is made up to exercise the report code.
"""


from __future__ import annotations

import copy
from pathlib import Path

from synthetic_runs import (
    GB,
    LLAMA_7B_BPT,
    PEAK_BLOCKS,
    REPO,
    row_cells,
    synthetic_run,
    table_row,
    write_json,
)

from pagedbench.report import report


def _readme_tree(tmp_path: Path) -> tuple[Path, Path]:
    """A temp copy of the real README and a reports/ tree of SYNTHETIC runs: a GPU in two chunks, and a CPU run."""
    readme = tmp_path / "README.md"
    readme.write_text((REPO / "README.md").read_text())
    reports = tmp_path / "reports"
    run = synthetic_run("synthetic-gpu")
    old, new = copy.deepcopy(run), copy.deepcopy(run)
    old["tests"] = {k: v for k, v in run["tests"].items() if "test_vllm_throughput" in k}
    old["tests"][next(iter(old["tests"]))]["metrics"]["output_tok_per_s"]["value"] = 1.0  # superseded below
    old["started"] = "2024-12-31T00:00:00+00:00"
    # The newer chunk's file name sorts first: the merge must still keep its results (by 'started').
    runs = reports / "synthetic-gpu" / "runs"
    runs.mkdir(parents=True)
    write_json(runs, new, "a-newer.json")
    write_json(runs, old, "b-older.json")
    cpu = synthetic_run("cpu")
    cpu["tests"] = {k: v for k, v in cpu["tests"].items()
                    if any(f in k for f in ("test_memory_waste", "test_concurrent_users", "test_prefix_sharing"))}
    (reports / "cpu" / "runs").mkdir(parents=True)
    write_json(reports / "cpu" / "runs", cpu, "cpu.json")
    return readme, reports


def _outside_markers(text: str) -> str:
    for start, end in (("<!-- figures:start -->", "<!-- figures:end -->"),
                       ("<!-- cpu-tables:start -->", "<!-- cpu-tables:end -->")):
        text = text[:text.index(start)] + text[text.index(end):]
    return text


def test_readme_command_is_idempotent(tmp_path):
    from pagedbench.cli import main

    readme, reports = _readme_tree(tmp_path)
    original = readme.read_text()
    args = ["readme", "--readme", str(readme), "--reports", str(reports)]
    assert main(args) == 0
    first = readme.read_text()
    assert main(args) == 0
    assert readme.read_text() == first  # a second run changes nothing
    assert _outside_markers(first) == _outside_markers(original)  # the prose is left alone

    figures = first.split("<!-- figures:start -->")[1].split("<!-- figures:end -->")[0]
    assert figures.count("| GPU |") == 1  # one table, its header once
    row = row_cells(table_row(figures, "synthetic-gpu"))
    assert row[1] == "6,150"  # from the newer chunk, though its file name sorts first
    assert row[-2] == "2025-01-01"
    assert "| cpu |" not in figures  # the CPU run has its own block

    tables = first.split("<!-- cpu-tables:start -->")[1].split("<!-- cpu-tables:end -->")[0]
    assert "converted to LLaMA-7B fp16 bytes" in tables and "tiny-llama" in tables
    for title in ("Memory waste, 100 variable-length users", "Concurrent users under a KV budget", "Prefix sharing",
                  "Internal fragmentation by block size"):
        assert f"### {title}" in tables
    assert "Llama-3.1-8B bf16" not in tables  # LLaMA-7B fp16 only
    paged16 = row_cells(table_row(tables, "16", "paged, block 16"))
    assert paged16[2] == f"{PEAK_BLOCKS[16] * 16 * LLAMA_7B_BPT / GB:,.2f}"


def test_readme_links_reports_that_exist(tmp_path):
    from pagedbench.cli import main

    readme, reports = _readme_tree(tmp_path)
    report(sorted((reports / "synthetic-gpu" / "runs").glob("*.json")), reports / "synthetic-gpu")
    assert main(["readme", "--readme", str(readme), "--reports", str(reports)]) == 0
    row = row_cells(table_row(readme.read_text(), "synthetic-gpu"))
    assert row[-1] == "[reports/synthetic-gpu/report.md](reports/synthetic-gpu/report.md)"


def test_readme_without_markers_exits_2(tmp_path, capsys):
    from pagedbench.cli import main

    readme, reports = _readme_tree(tmp_path)
    readme.write_text(readme.read_text().replace("<!-- cpu-tables:end -->", ""))
    before = readme.read_text()
    assert main(["readme", "--readme", str(readme), "--reports", str(reports)]) == 2
    assert "cpu-tables:end" in capsys.readouterr().err
    assert readme.read_text() == before


# ---- the serving tier and the settings vLLM ran with ----------------------------------------
