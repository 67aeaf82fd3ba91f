"""Throughput-tier sections: HF generate, vLLM offline throughput (and vLLM's own benchmark beside it), the
max-num-seqs sweep, memory over time."""

from __future__ import annotations

from pathlib import Path

from pagedbench.gate.run_file import is_number
from pagedbench.gate.tolerance import REFERENCE_AGREEMENT
from pagedbench.report.results import (
    HF_GENERATE,
    MAX_NUM_SEQS_SWEEP,
    VLLM_BENCH_REFERENCE,
    VLLM_THROUGHPUT,
    Result,
    results,
    saturation,
    sorted_by,
    speedups_vs_hf,
)
from pagedbench.report.serving_sections import SETTINGS_TITLE
from pagedbench.report.tables import ACROSS_RUNS, NOT_IN_RUN, NOT_IN_RUN_PLOT, fmt, md_table, plot_link, speedup_cell
from pagedbench.report.throughput_plots import plot_max_num_seqs, plot_memory_timeline


def section_hf_generate(run: dict, out_dir: Path) -> tuple[str, str]:
    rs = sorted_by(results(run, HF_GENERATE), "model", "cache", "batch", "new_tokens")
    title = "Hugging Face generate (baseline)"
    if not rs:
        return title, NOT_IN_RUN
    rows = [[str(r.param("model")), str(r.param("cache")), fmt(r.param("batch")), fmt(r.param("new_tokens")),
             fmt(r.metric("tok_per_s"), 1), fmt(r.metric("peak_alloc_gib"), 2), fmt(r.metric("nvml_peak_gib"), 2),
             fmt(r.metric("kv_cache_gib"), 2)] for r in rs]
    headers = ["model", "cache", "batch", "new tokens", "tok/s", "peak alloc GiB", "NVML peak GiB", "KV cache GiB"]
    return title, md_table(headers, rows, numeric_from=2)


def section_vllm_throughput(run: dict, out_dir: Path) -> tuple[str, str]:
    rs = sorted_by(results(run, VLLM_THROUGHPUT), "model", "workload")
    refs = sorted_by(results(run, VLLM_BENCH_REFERENCE), "workload")
    title = "vLLM offline throughput"
    if not rs and not refs:
        return title, NOT_IN_RUN
    parts = [NOT_IN_RUN]
    if rs:
        speedups = speedups_vs_hf(run)
        rows = [[str(r.param("model")), str(r.param("workload")), fmt(r.param("requests")),
                 fmt(r.metric("output_tok_per_s"), 1), fmt(r.metric("total_tok_per_s"), 1),
                 fmt(r.metric("req_per_s"), 2), fmt(r.metric("nvml_peak_gib"), 2), speedup_cell(speedups.get(r.nodeid))]
                for r in rs]
        headers = ["model", "workload", "requests", "output tok/s", "total tok/s", "req/s", "NVML peak GiB",
                   "speed-up vs HF"]
        note = ("Speed-up vs HF = output tok/s ÷ HF generate's (dynamic cache, batch 16) on the same 16 requests; "
                "recorded for that workload only. NVML peak includes vLLM's pre-allocated KV pool. The engine runs "
                f"at vLLM's defaults but for the settings listed in \"{SETTINGS_TITLE}\".")
        if not all(one_session for _, one_session in speedups.values()):
            note += (f" '{ACROSS_RUNS}': the two tests ran in separate sessions (chunks, `-k`); the ratio is of "
                     "their figures in the run files and is not gated.")
        parts = [note, "", md_table(headers, rows, numeric_from=2)]
    return title, "\n".join(parts + ["", "### Against `vllm bench throughput`", "", reference_body(run, refs)])


def reference_body(run: dict, refs: list[Result]) -> str:
    """The suite's figure beside vLLM's own benchmark code on the same requests, in the same run."""
    if not refs:
        return NOT_IN_RUN
    kind = "cpu" if run["slug"] == "cpu" else "gpu"  # the test's tolerance is per kind of device
    rows = [[str(r.param("workload")), fmt(r.param("requests")), fmt(r.metric("output_tok_per_s"), 1),
             fmt(r.metric("vllm_bench_output_tok_per_s"), 1), fmt(r.metric("ratio_to_vllm_bench"), 3)] for r in refs]
    allowed = REFERENCE_AGREEMENT.get(kind)
    verdict = (f"the test fails when the ratio is off 1 by more than {100 * allowed:.0f} % on this kind of device."
               if allowed is not None else "on this kind of device the ratio is recorded, not asserted "
               "(see `REFERENCE_AGREEMENT` in pagedbench/gate/tolerance.py).")
    note = ("The suite's timed engine against `vllm.benchmarks.throughput.run_vllm` (what `vllm bench throughput` "
            f"runs) in its own process, on the same requests; {verdict}")
    headers = ["workload", "requests", "suite output tok/s", "vllm bench throughput output tok/s", "suite ÷ vllm bench"]
    return "\n".join([note, "", md_table(headers, rows, numeric_from=1)])


def section_max_num_seqs(run: dict, out_dir: Path) -> tuple[str, str]:
    rs = [r for r in sorted_by(results(run, MAX_NUM_SEQS_SWEEP), "max_num_seqs")]
    title = "Throughput vs max-num-seqs"
    if not rs:
        return title, NOT_IN_RUN_PLOT
    rows = [[fmt(r.param("max_num_seqs")), fmt(r.param("requests")), fmt(r.metric("output_tok_per_s"), 1)] for r in rs]
    parts: list[str] = []
    sat = saturation(rs)
    if sat is not None:
        largest = max((r.param("max_num_seqs") for r in rs if is_number(r.param("max_num_seqs"))), default=None)
        parts += [f"Saturation (first max-num-seqs within 10 % of the best throughput): **{fmt(sat)}**"
                  + (" — the largest point swept: throughput was still rising." if sat == largest else "."), ""]
    return title, "\n".join(parts + [md_table(["max-num-seqs", "requests", "output tok/s"], rows, numeric_from=0), "",
                                     plot_link(plot_max_num_seqs(rs, out_dir), "throughput vs max-num-seqs")])


def section_memory_timeline(run: dict, out_dir: Path) -> tuple[str, str]:
    title = "Memory over time"
    name = plot_memory_timeline(run, out_dir)
    return title, plot_link(name, "memory timeline") if name else NOT_IN_RUN_PLOT
