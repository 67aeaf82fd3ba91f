"""Kernel-tier sections: decode attention (paged against contiguous) and paged prefill."""

from __future__ import annotations

from pathlib import Path

from pagedbench.gate.run_file import is_number
from pagedbench.report.kernel_plots import plot_decode
from pagedbench.report.results import (
    CONTIGUOUS_DECODE,
    PAGED_DECODE,
    PAGED_DECODE_FP8,
    PAGED_PREFILL,
    Result,
    paged_overhead_pct,
    param_order,
    results,
    sorted_by,
)
from pagedbench.report.tables import DASH, NOT_IN_RUN, NOT_IN_RUN_PLOT, fmt, md_table, plot_link, times


def _pick(rs: list[Result], key: str, preferred):
    """preferred where some result has it, else the largest number (else the first value)."""
    values = {r.param(key) for r in rs}
    if preferred in values:
        return preferred
    numeric = [v for v in values if is_number(v)]
    return max(numeric) if numeric else min(values, key=param_order)


def decode_slice(paged: list[Result], contiguous: list[Result]) -> tuple[list[Result], list[Result], dict]:
    """The rows the kernel plot compares: batch 32 (else largest), block 16, shuffled order, where present.

    Contiguous kernels have no block size or order; they are sliced by batch alone.
    """
    chosen = {"batch": _pick(paged or contiguous, "batch", 32)}
    paged = [r for r in paged if r.param("batch") == chosen["batch"]]
    for key, preferred in (("block_size", 16), ("order", "shuffled")):
        if paged:
            chosen[key] = _pick(paged, key, preferred)
            paged = [r for r in paged if r.param(key) == chosen[key]]
    contiguous = [r for r in contiguous if r.param("batch") == chosen["batch"]]
    return sorted_by(paged, "impl", "context"), sorted_by(contiguous, "impl", "context"), chosen


def _signed_pct(v) -> str:
    return DASH if v is None else f"{round(v, 1) + 0.0:+.1f}%"  # + 0.0: no "-0.0%"


def section_decode_attention(run: dict, out_dir: Path) -> tuple[str, str]:
    paged, contiguous = results(run, PAGED_DECODE), results(run, CONTIGUOUS_DECODE)
    title = "Decode attention kernels"
    if not paged and not contiguous:
        return title, NOT_IN_RUN_PLOT
    shown_paged, shown_contiguous, chosen = decode_slice(paged, contiguous)
    baselines = sorted({str(r.param("contiguous_baseline")) for r in paged if r.param("contiguous_baseline")})

    contiguous_ids = {r.nodeid for r in contiguous}

    def row(r: Result, full: bool) -> list[str]:
        kind = "contiguous" if r.nodeid in contiguous_ids else "paged"
        lead = [str(r.param("impl")), kind]
        if full:
            lead += [fmt(r.param("batch")), fmt(r.param("block_size")) if kind == "paged" else DASH,
                     str(r.param("order")) if kind == "paged" else DASH]
        return lead + [fmt(r.param("context")), fmt(r.metric("latency_us"), 1), fmt(r.metric("kv_gbps"), 1),
                       fmt(r.metric("pct_of_copy_bw"), 1, True),
                       _signed_pct(paged_overhead_pct(r)) if kind == "paged" else DASH]

    tail = ["context", "latency µs", "KV GB/s", "% of copy bandwidth", "paged overhead"]
    where = ", ".join(f"{k} = {v}" for k, v in chosen.items())
    copy = {r.param("copy_gbps") for r in paged + contiguous if is_number(r.param("copy_gbps"))}
    note = (f"Shown: {where}. KV GB/s = K and V bytes read per decode step ÷ latency (one layer, "
            "CUDA-event median). Paged overhead = paged latency ÷ latency of the contiguous kernel "
            f"({', '.join(baselines) or DASH}) at the same batch and context − 1; negative = paged was faster.")
    if len(copy) == 1:
        note += f" Copy bandwidth measured on this GPU: {fmt(copy.pop())} GB/s."
    shown = shown_paged + shown_contiguous
    parts = [note, "", md_table(["impl", "kind", *tail], [row(r, False) for r in shown], text=(1,)), "",
             plot_link(plot_decode(shown_paged, shown_contiguous, chosen, out_dir), "decode latency vs context")]
    every = (sorted_by(paged, "impl", "batch", "block_size", "order", "context")
             + sorted_by(contiguous, "impl", "batch", "context"))
    if len(shown) < len(every):
        parts += ["", f"<details><summary>All {len(every)} kernel configurations</summary>", "",
                  md_table(["impl", "kind", "batch", "block size", "order", *tail], [row(r, True) for r in every],
                           text=(1, 4)), "", "</details>"]
    return title, "\n".join(parts + fp8_table(run))


def fp8_table(run: dict) -> list[str]:
    """The fp8-cache cases (test_paged_decode_fp8), beside the same case in the model's dtype."""
    rs = sorted_by(results(run, PAGED_DECODE_FP8), "impl", "batch", "context")
    if not rs:
        return []
    rows = [[str(r.param("impl")), fmt(r.param("batch")), fmt(r.param("context")), fmt(r.metric("latency_us"), 1),
             fmt(r.metric("kv_gbps"), 1), fmt(r.metric("pct_of_copy_bw"), 1, True), times(r.metric("fp8_speedup"), 2),
             fmt(r.param("rel_error"), 4), fmt(r.param("error_vs_unrounded_kv"), 4)] for r in rs]
    note = ("### fp8 KV cache\n\nThe paged K/V in float8_e4m3fn, the query in bf16 (block 16, shuffled): KV GB/s "
            "counts the fp8 bytes. Speed-up = the same case's latency with the model's dtype ÷ this one. Error: "
            "relative L2 against fp32 attention over the fp8-rounded K/V (the kernel's), and over the unrounded K/V "
            "(what the fp8 cache costs).")
    return ["", note, "", md_table(["impl", "batch", "context", "latency µs", "KV GB/s", "% of copy bandwidth",
                                    "speed-up over bf16", "error (fp8 K/V)", "error (unrounded K/V)"], rows,
                                   text=(0,))]


def section_prefill(run: dict, out_dir: Path) -> tuple[str, str]:
    rs = sorted_by(results(run, PAGED_PREFILL), "batch", "context", "block_size")
    title = "Paged prefill (chunked)"
    if not rs:
        return title, NOT_IN_RUN
    impls = sorted({str(r.param("impl")) for r in rs if r.param("impl")})
    note = (f"The last query-length tokens of each sequence attend causally to the whole context through the "
            f"block table ({', '.join(impls) or DASH}). TFLOP/s counts QKᵀ and PV of the causal tail.")
    rows = [[fmt(r.param("batch")), fmt(r.param("context")), fmt(r.param("block_size")), fmt(r.param("query_len")),
             fmt(r.metric("latency_us"), 1), fmt(r.metric("tflops"), 1)] for r in rs]
    return title, "\n".join([note, "", md_table(["batch", "context", "block size", "query len", "latency µs",
                                                       "TFLOP/s"], rows, numeric_from=0)])
