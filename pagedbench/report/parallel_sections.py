"""Tensor-parallel section: one model over two GPUs (throughput, scaling, the KV pool each GPU holds)."""

from __future__ import annotations

from pathlib import Path

from pagedbench.report.results import LLAMA70B_TP2, TP_BLOCK_COUNTS, TP_SCALING, results, sorted_by
from pagedbench.report.serving_sections import SETTINGS_TITLE
from pagedbench.report.tables import NOT_IN_RUN, fmt, md_table

TP_TITLE = "Tensor parallel"


def section_tensor_parallel(run: dict, out_dir: Path) -> tuple[str, str]:
    scaling, counts, big = results(run, TP_SCALING), results(run, TP_BLOCK_COUNTS), results(run, LLAMA70B_TP2)
    if not (scaling or counts or big):
        return TP_TITLE, NOT_IN_RUN
    parts = ["One model split over the GPUs of one host by vLLM's multiprocessing executor (NCCL, NVLink "
             "multicast off). Each GPU holds half of every layer's weights and half of the KV heads."]
    if scaling:
        rows = [[str(r.param("model")), fmt(r.param("requests")), fmt(r.metric("tp1_output_tok_per_s")),
                 fmt(r.metric("tp2_output_tok_per_s")), fmt(r.metric("scaling_efficiency_pct"), 1),
                 fmt(r.metric("nvml_peak_gib_gpu0"), 1), fmt(r.metric("nvml_peak_gib_gpu1"), 1)] for r in scaling]
        parts += ["", "### Scaling", "",
                  "Variable-length workload (output tok/s, median of the timed rounds); efficiency = TP 2 ÷ "
                  "(2 × TP 1). TP 2 must be faster than TP 1 (asserted); the efficiency is gated.", "",
                  md_table(["model", "requests", "TP 1 tok/s", "TP 2 tok/s", "efficiency %", "GPU 0 peak GiB",
                            "GPU 1 peak GiB"], rows, numeric_from=1)]
    if counts:
        rows = [[str(r.param("model")), fmt(r.param("block_size")), fmt(r.param("kv_budget_bytes_per_gpu")),
                 fmt(r.metric("tp1_blocks_same_budget")), fmt(r.metric("num_gpu_blocks")),
                 fmt(r.metric("max_users_at_max_len"))] for r in sorted_by(counts, "block_size")]
        parts += ["", "### KV blocks per GPU", "",
                  "The same KV bytes per GPU: at TP 2 a token's K and V on one GPU are half as large, so the pool "
                  "holds twice the blocks of the TP 1 arithmetic (asserted, and bounded from both sides: "
                  "blocks × block bytes ≤ budget < (blocks + 1) × block bytes).", "",
                  md_table(["model", "block size", "KV bytes per GPU", "TP 1 blocks (arithmetic)", "TP 2 blocks",
                            "requests of max_model_len"], rows, numeric_from=1)]
    if big:
        rows = [[str(r.param("model")), fmt(r.param("block_size")), fmt(r.metric("output_tok_per_s")),
                 fmt(r.metric("num_gpu_blocks")), fmt(r.metric("nvml_peak_gib_gpu0"), 1),
                 fmt(r.metric("nvml_peak_gib_gpu1"), 1)] for r in big]
        parts += ["", "### Llama-3.1-70B at TP 2", "",
                  "Dummy weights; the pool is what vLLM sizes from free memory (bounded from both sides by its "
                  "KV tensors and by what NVML saw resident).", "",
                  md_table(["model", "block size", "output tok/s", "blocks per GPU", "GPU 0 peak GiB",
                            "GPU 1 peak GiB"], rows, numeric_from=1)]
    parts += ["", f"The settings the TP engines ran with: \"{SETTINGS_TITLE}\"."]
    return TP_TITLE, "\n".join(parts)
