"""The settings vLLM ran with and the settings tier's sections (report/settings_sections.py).

The runs are SYNTHETIC (synthetic_runs.py): every number is made up to exercise the report code.
"""


from __future__ import annotations

import copy
import math

from synthetic_runs import (
    AUTO_BLOCKS,
    COLD_HITS,
    FP8_BLOCKS,
    LONG_CONTEXTS,
    PRIMED_HITS,
    REPO,
    USERS,
    empty_run,
    row_cells,
    section_of,
    synthetic_run,
    table_row,
    write_json,
)

from pagedbench.gate.run_file import load_run, merge_runs
from pagedbench.report import report, write_report


def test_tp_settings_in_the_settings_section(full_report):
    _, md = full_report
    assert "### Offline engine at tensor parallel 2" in md
    assert table_row(md, "`pass_config.fuse_allreduce_rms`", "False", "True")


def test_settings_tier_changes_in_the_settings_section(full_report):
    _, md = full_report
    assert "### Settings tier (each case's engine" in md
    assert table_row(md, "`kv_cache_dtype`", "fp8", "auto")


def test_settings_table(full_report):
    _, md = full_report
    section = section_of(md, "Settings vLLM was run with")
    offline, served = section.split("### Server")
    assert row_cells(table_row(offline, "`seed`")) == ["`seed`", "0", "None", "the same sampling in every run"]
    assert row_cells(table_row(offline, "`disable_log_stats`")) == ["`disable_log_stats`", "False", "True", "vLLM's counters"]
    assert offline.count("| `seed` |") == 1  # throughput and reference tests share the engine: listed once
    assert row_cells(table_row(offline, "`max_num_seqs`")) == ["`max_num_seqs`", "1,024"]  # vllm_effective
    assert row_cells(table_row(offline, "`cudagraph_mode`")) == ["`cudagraph_mode`", "FULL_AND_PIECEWISE"]
    assert row_cells(table_row(served, "`load_format`")) == ["`load_format`", "dummy", "auto", "random weights"]
    assert served.count("| `max_model_len` |") == 1  # rates and concurrency tests: one server
    assert "Recorded by `test_vllm_bench_reference`, `test_vllm_throughput`." in offline
    assert "Recorded by `test_serving_concurrency`, `test_serving_rates`." in served


def test_settings_name_a_test_that_recorded_none(tmp_path):
    """A merged run's older throughput result has no settings: the table says it does not describe that test."""
    run = synthetic_run()
    params = run["tests"]["tests/test_vllm_throughput.py::test_vllm_throughput[synthetic-gpu-uniform]"]["params"]
    del params["settings_changed"], params["vllm_effective"]
    offline = section_of(write_report(run, tmp_path).read_text(), "Settings vLLM was run with").split("### Server")[0]
    assert ("Recorded by `test_vllm_bench_reference`; not by `test_vllm_throughput` (a run from before the suite "
            "recorded them).") in offline
    assert offline.rstrip().endswith("_Not in this run._")  # no vllm_effective either


def test_settings_tier_fp8_row_and_prefix_hits(full_report):
    _, md = full_report
    section = section_of(md, "Settings vLLM regresses in")
    fp8 = section.split("### fp8 KV cache")[1].split("###")[0]
    assert "The same KV budget, 4.00 GiB, block size 16" in fp8
    assert row_cells(table_row(fp8, "bfloat16 (auto)")) == ["bfloat16 (auto)", f"{AUTO_BLOCKS:,}", f"{USERS['bfloat16']:,}"]
    assert row_cells(table_row(fp8, "fp8")) == ["fp8", f"{FP8_BLOCKS:,}", f"{USERS['fp8']:,}"]
    assert (AUTO_BLOCKS, FP8_BLOCKS, USERS["bfloat16"], USERS["fp8"]) == (2_048, 4_096, 60, 120)
    assert row_cells(table_row(fp8, "fp8", "uniform-32-512")) == ["fp8", "uniform-32-512", "320", "6,400.0", "6,150.0",
                                                         "1.04×", "60,000", "30,000", "97.5%", "14/16"]
    prefix = section.split("### Prefix caching under load")[1].split("###")[0]
    assert row_cells(table_row(prefix, "primed (system prompt cached first)")) == [
        "primed (system prompt cached first)", "5,000.0", f"{PRIMED_HITS:,}", "19,200 / 19,216 / 19,200"]
    assert row_cells(table_row(prefix, "cold (nothing cached before the round)"))[2:] == [f"{COLD_HITS:,}", f"{COLD_HITS:,}"]
    assert row_cells(table_row(prefix, "no reuse (a cache salt per request)"))[1:] == ["2,000.0", "0", "–"]
    assert (f"Primed hits: **{PRIMED_HITS:,}** tokens, summed over the requests' own cached-token counts (predicted "
            f"{PRIMED_HITS:,}: every request takes the system prompt's full blocks); vLLM's `vllm:prefix_cache_hits` "
            "counter: 19,200, 19,216 and 19,200 in its 3 rounds. The requests' count is what the test asserts") in prefix
    assert PRIMED_HITS == 49_600  # 100 requests x 31 full blocks of 16 tokens
    assert "Primed ÷ no reuse: **2.50×**" in prefix and f"{100 * COLD_HITS / 60_000:.1f}% of their prompt" in prefix


def test_settings_tier_compile_long_context_startup(full_report):
    _, md = full_report
    section = section_of(md, "Settings vLLM regresses in")
    assert row_cells(table_row(section, "uniform-32-512", "320", "6,150.0")) == [
        "uniform-32-512", "320", "6,150.0", "2,460.0", "2.50×", "100.0%", "16/16", "FULL_AND_PIECEWISE"]
    for ctx, prefill, decode, peak in LONG_CONTEXTS:
        assert row_cells(table_row(section, f"{ctx:,}", "64", "16")) == [
            f"{ctx:,}", "64", "16", f"{prefill:,.1f}", f"{decode:.1f}", f"{peak:,}", f"{math.ceil((ctx + 64) / 16):,}"]
    startup = section.split("### Start-up")[1]
    assert row_cells(startup.splitlines()[4]) == ["cold start s", "warm start s", "model load s", "cold compile s",
                                               "warm compile s", "CUDA graph capture s"]
    assert row_cells(table_row(startup, "70.0")) == ["70.0", "20.0", "3.0", "20.0", "4.0", "7.0"]


def test_settings_tier_failed_test_without_metrics(tmp_path):
    """A later run's fp8 throughput test failed before measuring: its part says so, the rest is unchanged."""
    run, failed = synthetic_run(), copy.deepcopy(empty_run("synthetic-gpu"))
    node = "tests/benchmarks/test_vllm_settings.py::test_kv_cache_dtype_throughput[synthetic-gpu-fp8]"
    failed["tests"] = {node: {"outcome": "failed", "params": {}, "metrics": {}, "series": {}, "comparisons": [],
                              "failure": "vLLM failed to start"}}
    paths = [write_json(tmp_path, run, "a.json"), write_json(tmp_path, failed, "b.json")]
    md = report(paths, tmp_path / "out").read_text()
    fp8 = section_of(md, "Settings vLLM regresses in").split("### fp8 KV cache")[1].split("###")[0]
    assert row_cells(table_row(fp8, "fp8")) == ["fp8", f"{FP8_BLOCKS:,}", f"{USERS['fp8']:,}"]
    assert fp8.rstrip().endswith("_Not in this run._") and "uniform-32-512" not in fp8
    assert f"- `{node}`: vLLM failed to start" in md


def test_settings_tier_from_the_kept_h200_runs(tmp_path):
    """The kept H200 runs: fp8 holds twice bf16's blocks in the same budget; the primed round's hits are the
    arithmetic's, with vLLM's counter (short of it there) beside them."""
    runs = sorted((REPO / "reports" / "h200" / "runs").glob("*.json"))
    md = write_report(merge_runs([load_run(p) for p in runs], runs), tmp_path).read_text()
    section = section_of(md, "Settings vLLM regresses in")
    assert row_cells(table_row(section, "fp8")) == ["fp8", "8,192", "240"]
    assert row_cells(table_row(section, "bfloat16 (auto)")) == ["bfloat16 (auto)", "4,096", "120"]
    assert "Primed hits: **126,976** tokens" in section and "counter: 48,608 in each of 3 rounds" in section
    assert table_row(section, "8,192", "64", "16") and table_row(section, "32,768", "64", "16")
