"""The report's PNG plots and the README's figures table (report/plots.py and the plots by tier).

The runs are SYNTHETIC (synthetic_runs.py): every number is made up to exercise the report code.
"""


from __future__ import annotations

from synthetic_runs import (
    ALL_PLOTS,
    CAPACITY_REQ_S,
    LLAMA31_8B_BPT,
    PEAK_BLOCKS,
    TOKENS_HELD,
    assert_png,
    empty_run,
    row_cells,
    section_of,
    synthetic_run,
)

from pagedbench.report import figures_table, write_report


def test_all_plots_written(full_report):
    out, md = full_report
    for name in ALL_PLOTS:
        assert_png(out / name)
        assert f"]({name})" in md


def test_figures_table():
    table = figures_table(synthetic_run()).splitlines()
    assert len(table) == 3
    assert row_cells(table[0]) == ["GPU", "vLLM output tok/s", "HF tok/s", "speed-up", "blocks per block size",
                                "measured waste", "best decode GB/s", "TTFT p99 ms (variable, 16 req/s)",
                                "SLO capacity (variable)"]
    row = row_cells(table[2])
    b16, b32 = ((20 << 30) // (bs * LLAMA31_8B_BPT) for bs in (16, 32))
    assert row[:5] == ["synthetic-gpu", "6,150", "530", "11.6×", f"16: {b16:,}; 32: {b32:,} (in 20 GiB)"]
    waste16 = 100 * (PEAK_BLOCKS[16] * 16 - TOKENS_HELD) / (PEAK_BLOCKS[16] * 16)
    assert row[5].startswith(f"paged {waste16:.1f}% (block 16)")
    assert row[6].endswith("(flashinfer)")
    assert row[7:] == ["150", f"{CAPACITY_REQ_S:.2f} req/s"]  # the variable shape's r16 TTFT p99, its capacity


def test_figures_table_without_data_shows_dashes():
    row = row_cells(figures_table(empty_run()).splitlines()[2])
    assert row == ["synthetic-empty"] + ["–"] * 8


def test_partial_run_skips_absent_plots(tmp_path):
    run = synthetic_run()
    run["tests"] = {k: v for k, v in run["tests"].items() if "test_max_num_seqs_sweep" in k}
    md = write_report(run, tmp_path).read_text()
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["max_num_seqs.png"]
    assert section_of(md, "Memory waste, variable-length users") and md.count("_Not in this run") == 15


def test_stale_plot_removed(tmp_path):
    write_report(synthetic_run(), tmp_path)
    assert (tmp_path / "decode_attention.png").exists()
    write_report(empty_run(), tmp_path)
    assert not (tmp_path / "decode_attention.png").exists()


# ---- the "Real-World Impact" capacity table ----------------------------------------------
# SYNTHETIC inputs added to synthetic_run(): a larger static-cache HF batch (the table must use the
# largest), a block-8 concurrent-users result (block 16 must still win) and the repeat workload of
# vLLM (the table must use the variable-length one).
