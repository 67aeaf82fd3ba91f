"""The report as a whole: the command line, the sections in order, the header and summary, merged
chunks, bad input, and what an empty or partial run shows (report/document.py, report/summary.py).

The runs are SYNTHETIC (synthetic_runs.py): every number is made up to exercise the report code.
"""


from __future__ import annotations

import ast
import copy
import json

import pytest
from synthetic_runs import (
    ALL_PLOTS,
    LLAMA31_8B_BPT,
    REPO,
    assert_png,
    empty_run,
    headings_of,
    report_cli,
    result_doc,
    row_cells,
    section_of,
    synthetic_run,
    table_row,
    write_json,
)

from pagedbench.errors import PagedBenchError
from pagedbench.gate.run_file import load_run
from pagedbench.report import TEST_FUNCTIONS, report, write_report


def test_every_test_function_the_report_reads_exists():
    """A renamed test must fail here, not leave its report section empty."""
    defined = {node.name for path in (REPO / "tests" / "benchmarks").glob("*.py")
               for node in ast.walk(ast.parse(path.read_text(), str(path)))
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")}
    assert sorted(set(TEST_FUNCTIONS) - defined) == []


def test_cli_writes_report_and_pngs_to_default_dir(tmp_path):
    run = write_json(tmp_path, synthetic_run("cli-slug"))
    proc = report_cli(run, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "reports" / "cli-slug"
    assert (out / "report.md").is_file()
    for name in ALL_PLOTS:
        assert_png(out / name)
    assert "cli-slug" in (out / "report.md").read_text()


def test_cli_out_option(tmp_path):
    run = write_json(tmp_path, synthetic_run())
    proc = report_cli(run, "--out", tmp_path / "custom", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "custom" / "report.md").is_file()
    assert not (tmp_path / "reports").exists()


def test_header_and_comparisons_summary(full_report):
    _, md = full_report
    assert md.startswith("# pagedbench report: synthetic-gpu")
    assert "SYNTHETIC GPU 80GB (80 GiB, driver 999.1)" in md
    assert "torch 0.0-synthetic" in md and "2025-01-01T00:42:00+00:00" in md
    # 3 memory-waste ok, 1 regressed, 1 improved, 1 new.
    assert row_cells(table_row(md, "ok", "regressed")) == ["ok", "regressed", "improved", "new"]
    idx = md.splitlines().index(table_row(md, "ok", "regressed"))
    assert row_cells(md.splitlines()[idx + 2]) == ["3", "1", "1", "1"]
    regressed = table_row(md, "test_vllm_throughput[synthetic-gpu-uniform]", "output_tok_per_s")
    assert "-6.8%" in regressed and "REGRESSED" in regressed  # (6150 - 6600) / 6600


SECTION_TITLES = ["Memory waste, 100 variable-length users", "Concurrent users under a KV budget", "Prefix sharing",
                  "Internal fragmentation by block size", "Block pool size for a KV budget",
                  "Hugging Face generate (baseline)", "vLLM offline throughput", "Throughput vs max-num-seqs",
                  "Decode attention kernels", "Paged prefill (chunked)", "Memory over time", "Serving under load",
                  "Settings vLLM regresses in", "Settings vLLM was run with", "Tensor parallel"]


def test_sections_numbered_in_order(full_report):
    _, md = full_report
    assert headings_of(md) == ["Comparison with the stored baseline", "Headline figures",
                             "Real-World Impact: capacity and cost",
                             *(f"{n}. {title}" for n, title in enumerate(SECTION_TITLES, 1))]


def test_a_test_that_failed_before_measuring_is_named_with_its_reason(tmp_path):
    run = load_run(REPO / "reports" / "h200x2" / "runs" / "02-tp-compare.json")
    entry = {"outcome": "failed", "slug": "h200x2", "params": {}, "series": {}, "metrics": {}, "comparisons": [],
             "failure": "vLLM failed to start (tensor_parallel_size=2): CUBLAS_STATUS_EXECUTION_FAILED"}
    run["tests"]["tests/benchmarks/test_tensor_parallel.py::test_llama70b_tp2[h200x2]"] = entry
    md = write_report(run, tmp_path).read_text()
    assert "- `tests/benchmarks/test_tensor_parallel.py::test_llama70b_tp2[h200x2]`: vLLM failed to start" in md
    assert "3 passed, 1 failed" in md


def test_other_sections_present(full_report):
    _, md = full_report
    assert row_cells(table_row(md, "llama-3.1-8b", "16", "20.00"))[3:] == [f"{(20 << 30) // (16 * LLAMA31_8B_BPT):,}"] * 2 \
        + ["0", "20.00"]
    assert row_cells(table_row(md, "llama-3.1-8b", "static"))[4:] == ["530.0", "–", "–", "–"]
    assert row_cells(table_row(md, "llama-3.1-8b", "uniform-32-512"))[2:] == ["–", "6,150.0", "12,400.0", "22.40", "–",
                                                                      "11.6×"]
    assert table_row(md, "256", "–", "6,150.0")
    assert "Not in this run" not in md
    assert "lot skipped" not in md


def test_empty_run_says_not_in_this_run(tmp_path):
    md = write_report(empty_run(), tmp_path).read_text()
    assert md.count("_Not in this run") == 16  # 15 sections and the capacity table
    assert md.count("plot skipped") == 7
    assert not list(tmp_path.glob("*.png"))


def test_chunks_merge(tmp_path):
    run = synthetic_run()
    blocks, kernels = copy.deepcopy(run), copy.deepcopy(run)
    blocks["tests"] = {k: v for k, v in run["tests"].items() if "test_memory_waste" in k}
    kernels["tests"] = {k: v for k, v in run["tests"].items() if "decode" in k}
    kernels["finished"] = "2025-01-01T03:00:00+00:00"
    paths = [write_json(tmp_path, blocks, "a.json"), write_json(tmp_path, kernels, "b.json")]
    md = report(paths, tmp_path / "out").read_text()
    assert section_of(md, "Memory waste, 100 variable-length users") and "| fa3 | paged |" in md
    assert "2025-01-01T03:00:00+00:00" in md
    other = write_json(tmp_path, synthetic_run("other-gpu"), "c.json")
    with pytest.raises(PagedBenchError, match="c.json"):
        report([paths[0], other], tmp_path / "out2")


def test_speedup_of_separate_sessions_comes_from_the_run_files(tmp_path):
    """HF generate() and vLLM's repeat workload in separate chunks: no test could divide them, so the
    report does, from the two recorded figures, and marks the ratio as taken across runs."""
    run = synthetic_run()
    hf_id = "tests/test_hf.py::test_hf_generate[synthetic-gpu-dynamic]"  # batch 16, 128 new tokens, 412.5 tok/s
    repeat_id = "tests/test_vllm_throughput.py::test_vllm_throughput[synthetic-gpu-repeat]"
    hf_chunk, vllm_chunk = copy.deepcopy(run), copy.deepcopy(run)
    hf_chunk["tests"] = {hf_id: run["tests"][hf_id]}
    vllm_chunk["tests"] = {repeat_id: result_doc({"workload": "repeat-16x128", "model": "llama-3.1-8b", "requests": 16},
                                            {"output_tok_per_s": 2_062.5})}  # SYNTHETIC: 5x HF's
    paths = [write_json(tmp_path, hf_chunk, "hf.json"), write_json(tmp_path, vllm_chunk, "vllm.json")]
    md = report(paths, tmp_path / "out").read_text()
    assert row_cells(table_row(md, "llama-3.1-8b", "repeat-16x128"))[-1] == "5.0× (across runs)"
    assert "'across runs': the two tests ran in separate sessions" in md
    assert row_cells(table_row(md, "synthetic-gpu"))[3] == "5.0× (across runs)"  # the headline figures
    # A recorded speed-up (both sides in one session) is shown as measured: the synthetic run's 11.6x.
    assert "across runs" not in write_report(synthetic_run(), tmp_path / "one").read_text()
    # HF's batch of other requests (64 new tokens) is no pair for the repeat workload: nothing is divided.
    hf_chunk["tests"][hf_id]["params"]["new_tokens"] = 64
    write_json(tmp_path, hf_chunk, "hf.json")
    assert row_cells(table_row(report(paths, tmp_path / "out").read_text(), "llama-3.1-8b", "repeat-16x128"))[-1] == "–"



BAD_INPUTS = {
    "not-json": "{ not json",
    "wrong-version": json.dumps({**empty_run(), "schema_version": 99}),
    "no-tests": json.dumps({k: v for k, v in empty_run().items() if k != "tests"}),
    "bad-outcome": json.dumps({**empty_run(), "tests": {"t.py::test_x": {"outcome": "exploded"}}}),
    "metric-not-number": json.dumps({**empty_run(), "tests": {"t.py::test_x": {
        "outcome": "passed", "metrics": {"m": {"value": "fast", "unit": "", "direction": "higher"}}}}}),
    "slug-path": json.dumps({**empty_run(), "slug": "../escape"}),
    "list-top": "[]",
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2_naming_file(tmp_path, case):
    path = write_json(tmp_path, BAD_INPUTS[case], f"bad-{case}.json")
    proc = report_cli(path, cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert f"bad-{case}.json" in proc.stderr
    assert "Traceback" not in proc.stderr
    with pytest.raises(PagedBenchError, match=f"bad-{case}.json"):
        report([path], tmp_path / "out")


def test_missing_file_exits_2(tmp_path):
    proc = report_cli(tmp_path / "nope.json", cwd=tmp_path)
    assert proc.returncode == 2 and "nope.json" in proc.stderr
