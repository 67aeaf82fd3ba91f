"""The report generator, on SYNTHETIC run documents built here.

Every number below is made up to exercise the report code; none is a
measurement. Expected table cells are computed from first principles
(bytes per token of the model shapes), not by calling the report's helpers.
"""

from __future__ import annotations

import ast
import copy
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pagedbench.errors import PagedBenchError
from pagedbench.gate.run_file import load_run, merge_runs
from pagedbench.report import TEST_FUNCTIONS, figures_table, report, write_report

REPO = Path(__file__).resolve().parents[3]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# K and V x layers x KV heads x head_dim x bytes per element.
LLAMA_7B_BPT = 2 * 32 * 32 * 128 * 2      # fp16, MHA: 0.5 MiB per token
LLAMA31_8B_BPT = 2 * 32 * 8 * 128 * 2     # bf16, GQA with 8 KV heads: 128 KiB per token
GB = 1e9

N_REQUESTS, MAX_SEQ_LEN, TOKENS_HELD = 100, 2048, 50_200
# SYNTHETIC peak blocks per block size (about tokens / bs + half a block per request).
PEAK_BLOCKS = {8: 6_326, 16: 3_189, 32: 1_620}


def _metric(value, unit="", direction="equal"):
    return {"value": value, "unit": unit, "direction": direction, "spread": 0.0, "floor": 0.02}


def _test(params, metrics, series=None, comparisons=None, outcome="passed"):
    return {"outcome": outcome, "params": params, "metrics": {k: _metric(v) for k, v in metrics.items()},
            "series": series or {}, "comparisons": comparisons or []}


TP_SETTINGS = [{"name": "pass_config.fuse_allreduce_rms", "value": False, "vllm_default": True,
                "why": "SYNTHETIC: the fused all-reduce failed at TP 2"}]


def synthetic_run(slug="synthetic-gpu") -> dict:
    """A SYNTHETIC run with every section of the report filled."""
    tests = {}
    for bs, peak in PEAK_BLOCKS.items():
        tests[f"tests/benchmarks/test_vllm_block_pool.py::test_memory_waste[{slug}-bs{bs}]"] = _test(
            {"block_size": bs, "model": "tiny-llama", "n_requests": N_REQUESTS, "max_seq_len": MAX_SEQ_LEN},
            {"peak_blocks": peak, "tokens_held": TOKENS_HELD, "predicted_peak_blocks": peak,
             "paged_waste_pct": 100 * (peak * bs - TOKENS_HELD) / (peak * bs),
             "contiguous_waste_pct": 100 * (1 - TOKENS_HELD / (N_REQUESTS * MAX_SEQ_LEN))},
            comparisons=[{"metric": "peak_blocks", "baseline": peak, "now": peak, "status": "ok", "tolerance": 0.0}])
    for bs, peak, running in ((16, 30, 29), (32, 28, 27)):
        tests[f"tests/test_vllm_scheduler.py::test_concurrent_users[{slug}-bs{bs}]"] = _test(
            {"block_size": bs, "budget_tokens": 16_384, "max_seq_len": 2048, "avg_len": 500, "n_offered": 64},
            {"peak_running": running, "preemptions": 0, "contiguous_users": 8, "predicted_users": peak,
             "sim_peak_running": running, "peak_blocks": 16_384 // bs - 2, "sim_peak_blocks": 16_384 // bs - 2,
             "paged_vs_contiguous_pct": 100 * (16_384 - 2 * bs) / (running * 2048)})
    for on, blocks, hits in ((False, 3_800, 0), (True, 1_031, 3_069)):
        tests[f"tests/test_vllm_prefix.py::test_prefix_sharing[{slug}-{'on' if on else 'off'}]"] = _test(
            {"block_size": 16, "prefix_caching": on, "n_users": 100, "shared_len": 500, "unique_len": 100},
            {"peak_blocks": blocks, "prefix_hits": hits, "prefix_queries": 3_800 if on else 0,
             "hit_rate_pct": 100 * hits / 3_800, "predicted_blocks": blocks})
    for bs in (16, 32):
        blocks = (20 << 30) // (bs * LLAMA31_8B_BPT)
        tests[f"tests/benchmarks/test_vllm_block_pool.py::test_block_counts[{slug}-bs{bs}]"] = _test(
            {"block_size": bs, "model": "llama-3.1-8b", "kv_budget_bytes": 20 << 30},
            {"num_gpu_blocks": blocks, "kv_cache_bytes": blocks * bs * LLAMA31_8B_BPT, "predicted_blocks": blocks})
    tests[f"tests/test_hf.py::test_hf_generate[{slug}-dynamic]"] = _test(
        {"cache": "dynamic", "batch": 16, "new_tokens": 128, "model": "llama-3.1-8b"},
        {"tok_per_s": 412.5, "peak_alloc_gib": 17.3, "kv_cache_gib": 1.0},
        series={"memory_gib": [[0.1 * i, 15.0 + 0.02 * i] for i in range(60)]})
    tests[f"tests/test_hf.py::test_hf_generate[{slug}-static]"] = _test(
        {"cache": "static", "batch": 16, "new_tokens": 128, "model": "llama-3.1-8b"}, {"tok_per_s": 530.0})
    tests[f"tests/test_vllm_throughput.py::test_vllm_throughput[{slug}-uniform]"] = _test(
        {"workload": "uniform-32-512", "model": "llama-3.1-8b", "vllm_effective": VLLM_EFFECTIVE,
         "settings_changed": OFFLINE_SETTINGS},
        {"output_tok_per_s": 6_150.0, "total_tok_per_s": 12_400.0, "req_per_s": 22.4, "speedup_vs_hf": 11.6},
        series={"memory_gib": [[0.5 * i, 60.0 + (i % 7) * 0.3] for i in range(40)]},
        comparisons=[{"metric": "output_tok_per_s", "baseline": 6_600.0, "now": 6_150.0, "status": "regressed",
                      "tolerance": 0.05},
                     {"metric": "req_per_s", "baseline": None, "now": 22.4, "status": "new", "tolerance": 0.02}])
    for n, tps in ((1, 160.0), (4, 610.0), (16, 2_300.0), (64, 5_100.0), (256, 6_150.0)):
        tests[f"tests/test_vllm_throughput.py::test_max_num_seqs_sweep[{slug}-{n}]"] = _test(
            {"max_num_seqs": n, "saturation_max_num_seqs": min(n, 64)}, {"output_tok_per_s": tps},
            comparisons=[{"metric": "output_tok_per_s", "baseline": tps * 0.9, "now": tps, "status": "improved",
                          "tolerance": 0.05}] if n == 256 else [])
    for batch in (8, 32):
        for ctx in (512, 2048, 8192, 32768):
            kv_bytes = batch * ctx * LLAMA31_8B_BPT // 32  # one layer
            base = 4.0 + kv_bytes / 2.4e6  # µs: 4 µs launch + bytes at 2.4 TB/s
            for impl, speed in (("fa3_contiguous", None), ("fa3", 1.0), ("flashinfer", 0.98), ("triton", 1.25)):
                lat = base * (speed or 1.0)
                gbps = kv_bytes / (lat * 1e-6) / 1e9
                params = {"impl": impl, "batch": batch, "context": ctx, "block_size": 16, "copy_gbps": 3_000.0}
                metrics = {"latency_us": lat, "kv_gbps": gbps, "pct_of_copy_bw": 100 * gbps / 3_000}
                if speed is None:
                    tests[f"tests/benchmarks/test_decode_kernels.py::test_contiguous_decode[{slug}-{impl}-b{batch}-ctx{ctx}]"] \
                        = _test({**params, "order": "in-order"}, metrics)
                    continue
                params.update(order="shuffled", contiguous_baseline="fa3_contiguous",
                              paged_overhead_pct=100 * (speed - 1))
                tests[f"tests/benchmarks/test_decode_kernels.py::test_paged_decode[{slug}-{impl}-b{batch}-ctx{ctx}]"] = _test(
                    params, {**metrics, "paged_to_contiguous": speed})
    for impl, fp8_speedup in (("flashinfer", 1.6), ("triton", 1.25)):  # SYNTHETIC fp8-cache cases, batch 32
        kv_bytes = 32 * 8192 * LLAMA31_8B_BPT // 32 // 2  # one layer, 1 byte per element
        lat = (4.0 + 2 * kv_bytes / 2.4e6) / fp8_speedup
        tests[f"tests/benchmarks/test_decode_kernels.py::test_paged_decode_fp8[{slug}-{impl}-b32-ctx8192]"] = _test(
            {"impl": impl, "batch": 32, "context": 8192, "block_size": 16, "order": "shuffled", "kv_dtype": "fp8",
             "rel_error": 0.004, "error_vs_unrounded_kv": 0.031, "copy_gbps": 3_000.0},
            {"latency_us": lat, "kv_gbps": kv_bytes / (lat * 1e-6) / 1e9, "pct_of_copy_bw": 10.0,
             "fp8_speedup": fp8_speedup})
    for batch, ctx, lat in ((1, 2048, 40.0), (8, 8192, 930.0)):
        tests[f"tests/benchmarks/test_decode_kernels.py::test_paged_prefill[{slug}-b{batch}-ctx{ctx}]"] = _test(
            {"impl": "fa3", "batch": batch, "context": ctx, "block_size": 16, "query_len": 512},
            {"latency_us": lat, "tflops": 500.0})
    tests[f"tests/benchmarks/test_decode_kernels.py::test_paged_decode[{slug}-skipped]"] = {
        "outcome": "skipped", "params": {}, "metrics": {}, "series": {}, "comparisons": []}
    tests.update(serving_tests(slug))
    tests.update(settings_tier_tests(slug))
    return {"schema_version": 1, "slug": slug,
            "gpu": {"name": "SYNTHETIC GPU 80GB", "memory_bytes": 80 << 30, "driver": "999.1"},
            "versions": {"torch": "0.0-synthetic", "vllm": "0.0-synthetic"},
            "started": "2025-01-01T00:00:00+00:00", "finished": "2025-01-01T00:42:00+00:00",
            "interrupted": False, "tests": tests}


# ---- SYNTHETIC serving-tier results -------------------------------------------------------
# The SLO is written out here (MLPerf Llama-3.1-8B server: p99 TTFT <= 2 s, p99 TPOT <= 100 ms), not read
# from pagedbench.metrics.slo, so a changed limit fails a test instead of silently moving the expected cells.
SLO_TTFT_MS, SLO_TPOT_MS = 2_000.0, 100.0
SERVING_OUT_LEN = 272
# (key, offered req/s, prompts, achieved req/s, TTFT p50, TTFT p99, TPOT p50, TPOT p99): the variable shape's
# rate sweep; the unbounded load misses the SLO (TTFT p99 2,600 > 2,000 ms), the others meet it.
RATE_LOADS = (("r1", 1.0, 16, 0.9, 30.0, 40.0, 7.0, 8.0),
              ("r4", 4.0, 40, 3.6, 35.0, 120.0, 7.5, 9.0),
              ("r16", 16.0, 160, 12.5, 45.0, 150.0, 9.0, 12.0),
              ("rinf", math.inf, 200, 30.0, 1_500.0, 2_600.0, 14.0, 30.0))
CONCURRENCY_LOADS = (("c16", math.inf, 64, 6.0, 34.0, 130.0, 7.3, 8.0),
                     ("c64", math.inf, 200, 20.0, 66.0, 440.0, 9.4, 11.7),
                     ("c256", math.inf, 200, 30.5, 970.0, 1_570.0, 12.9, 36.5))
PREFIX_LOADS = (("cache_on", math.inf, 100, 100.0, 300.0, 400.0, 10.0, 12.0),
                ("cache_off", math.inf, 100, 45.0, 1_200.0, 1_560.0, 16.6, 28.0))
# The SLO margin (worse of p99 TTFT / 2 s, p99 TPOT / 100 ms) crosses 1 between r16 (0.12) and rinf (1.3):
# linear interpolation in achieved req/s, as pagedbench.metrics.slo documents it.
CAPACITY_REQ_S = 12.5 + (1 - 12.0 / SLO_TPOT_MS) / (2_600.0 / SLO_TTFT_MS - 12.0 / SLO_TPOT_MS) * (30.0 - 12.5)
SERVER_SETTINGS = [{"name": "max_model_len", "value": 2048, "vllm_default": "the model's", "why": "every request fits"},
                   {"name": "load_format", "value": "dummy", "vllm_default": "auto", "why": "random weights"}]
OFFLINE_SETTINGS = [{"name": "seed", "value": 0, "vllm_default": None, "why": "the same sampling in every run"},
                    {"name": "disable_log_stats", "value": False, "vllm_default": True, "why": "vLLM's counters"}]
VLLM_EFFECTIVE = {"max_num_seqs": 1024, "max_num_batched_tokens": 8192, "block_size": 16,
                  "enable_prefix_caching": True, "cudagraph_mode": "FULL_AND_PIECEWISE"}
PREFIX_HIT_TOKENS = 99 * (500 // 16) * 16   # every request after the first hits the shared prompt's full blocks
REFERENCE_SUITE, REFERENCE_BENCH = 6_200.0, 6_100.0


def _loads(loads) -> tuple[dict, dict]:
    """(metrics, params) of a serving test's loads, under each load's key as the serving tests record them."""
    metrics, params = {}, {}
    for i, (key, offered, prompts, req_s, ttft50, ttft99, tpot50, tpot99) in enumerate(loads):
        meets = ttft99 <= SLO_TTFT_MS and tpot99 <= SLO_TPOT_MS
        metrics.update({f"{key}.ttft_p50_ms": ttft50, f"{key}.ttft_p99_ms": ttft99, f"{key}.tpot_p50_ms": tpot50,
                        f"{key}.tpot_p99_ms": tpot99, f"{key}.itl_p99_ms": 3 * tpot99,
                        f"{key}.e2el_p99_ms": ttft99 + SERVING_OUT_LEN * tpot50,
                        f"{key}.output_tok_per_s": req_s * SERVING_OUT_LEN, f"{key}.req_per_s": req_s})
        params.update({f"{key}.offered_rate": offered, f"{key}.prompts": prompts,
                       f"{key}.request_goodput": req_s if meets else req_s / 10,
                       f"{key}.server.kv_cache_usage_peak": 0.05 * (i + 1), f"{key}.server.preemptions": 3.0 * i,
                       f"{key}.server.running_peak": float(min(prompts, 48 * (i + 1)))})
    return metrics, params


def serving_tests(slug: str) -> dict:
    tests = {}
    metrics, params = _loads(RATE_LOADS)
    tests[f"tests/benchmarks/test_serving.py::test_serving_rates[{slug}-variable]"] = _test(
        {**params, "shape": "variable", "input_len": 272, "output_len": SERVING_OUT_LEN, "range_ratio": 0.882,
         "rates": [k for k, *_ in RATE_LOADS], "server_settings": SERVER_SETTINGS,
         "slo_capacity": f"{CAPACITY_REQ_S:.2f} req/s", "slo_capacity_bound": "interpolated"},
        {**metrics, "slo_capacity_req_per_s": CAPACITY_REQ_S})
    metrics, params = _loads(RATE_LOADS[-1:])
    tests[f"tests/benchmarks/test_serving.py::test_serving_rates[{slug}-long_prompt]"] = _test(
        {**params, "shape": "long_prompt", "input_len": 1024, "output_len": 32, "range_ratio": 0.0, "rates": ["rinf"],
         "server_settings": SERVER_SETTINGS, "slo_capacity": "no measured rate meets the SLO",
         "slo_capacity_bound": "none"}, metrics)
    metrics, params = _loads(CONCURRENCY_LOADS)
    tests[f"tests/benchmarks/test_serving.py::test_serving_concurrency[{slug}-variable]"] = _test(
        {**params, "shape": "variable", "concurrency": [16, 64, 256], "server_settings": SERVER_SETTINGS}, metrics)
    metrics, params = _loads(PREFIX_LOADS)
    tests[f"tests/benchmarks/test_serving.py::test_serving_prefix_caching[{slug}]"] = _test(
        {**params, "shared_len": 500, "unique_len": 100, "requests": 100, "block_size": 16},
        {**metrics, "cache_on.prefix_hit_tokens": PREFIX_HIT_TOKENS, "cache_on.hit_rate": PREFIX_HIT_TOKENS / 60_000,
         "ttft_p50_ratio_on_off": 300.0 / 1_200.0})
    tests[f"tests/benchmarks/test_throughput.py::test_vllm_bench_reference[{slug}-variable]"] = _test(
        {"workload": "uniform-32-512", "requests": 320, "settings_changed": OFFLINE_SETTINGS},
        {"output_tok_per_s": REFERENCE_SUITE, "vllm_bench_output_tok_per_s": REFERENCE_BENCH,
         "ratio_to_vllm_bench": REFERENCE_SUITE / REFERENCE_BENCH})
    tests[f"tests/benchmarks/test_tensor_parallel.py::test_tp_scaling[{slug}x2]"] = _test(
        {"tp": 2, "model": "llama-3.1-8b", "requests": 320, "settings_changed": TP_SETTINGS},
        {"tp1_output_tok_per_s": 6_150.0, "tp2_output_tok_per_s": 9_800.0, "scaling_efficiency_pct": 79.7,
         "nvml_peak_gib_gpu0": 72.0, "nvml_peak_gib_gpu1": 71.5})
    tests[f"tests/benchmarks/test_tensor_parallel.py::test_tp_block_counts[{slug}x2-bs16]"] = _test(
        {"tp": 2, "model": "llama-3.1-8b", "block_size": 16, "kv_budget_bytes_per_gpu": 4 << 30},
        {"num_gpu_blocks": 4_096, "tp1_blocks_same_budget": 2_048, "max_users_at_max_len": 32,
         "kv_cache_bytes_per_gpu": 4 << 30})
    tests[f"tests/benchmarks/test_tensor_parallel.py::test_llama70b_tp2[{slug}x2]"] = _test(
        {"tp": 2, "model": "llama-3.1-70b", "requests": 320, "block_size": 16},
        {"output_tok_per_s": 1_600.0, "num_gpu_blocks": 9_000, "nvml_peak_gib_gpu0": 74.0, "nvml_peak_gib_gpu1": 74.0})
    return tests


# ---- SYNTHETIC settings-tier results ------------------------------------------------------
# fp8 pool: the same 4 GiB KV budget at bf16 and fp8 (one byte per element: twice the blocks); users of the
# variable workload's mean length, 272 + 272 = 544 tokens = 34 blocks of 16.
FP8_BUDGET, FP8_BS, FP8_AVG_LEN = 4 << 30, 16, 544
AUTO_BLOCKS = FP8_BUDGET // (FP8_BS * LLAMA31_8B_BPT)
FP8_BLOCKS = FP8_BUDGET // (FP8_BS * LLAMA31_8B_BPT // 2)
USERS = {"bfloat16": AUTO_BLOCKS // -(-FP8_AVG_LEN // FP8_BS), "fp8": FP8_BLOCKS // -(-FP8_AVG_LEN // FP8_BS)}
# Prefix caching under load: 100 requests of 500 shared + 100 own tokens, block 16; primed, every request takes
# the shared prompt's 31 full blocks; cold, every request after the first does. The counter falls short on the GPU.
PRIMED_HITS = 100 * (500 // 16) * 16
COLD_HITS = 99 * (500 // 16) * 16
PRIMED_COUNTER = [19_200, 19_216, 19_200]
LONG_CONTEXTS = ((8_192, 9_000.0, 150.0, 516), (32_768, 6_000.0, 120.0, 2_053))  # 2,053: one slot booked early


def settings_tier_tests(slug: str) -> dict:
    tests = {}
    tests[f"tests/benchmarks/test_vllm_settings.py::test_kv_cache_dtype_blocks[{slug}-fp8]"] = _test(
        {"block_size": FP8_BS, "kv_cache_dtype": "fp8", "kv_budget_bytes": FP8_BUDGET, "users_per_budget": USERS},
        {"num_gpu_blocks": FP8_BLOCKS, "num_gpu_blocks_auto": AUTO_BLOCKS})
    tests[f"tests/benchmarks/test_vllm_settings.py::test_kv_cache_dtype_throughput[{slug}-fp8]"] = _test(
        {"kv_cache_dtype": "fp8", "workload": "uniform-32-512", "requests": 320, "fp8_blocks": 2 * 30_000,
         "auto_blocks": 30_000, "identical_requests": "14/16",
         "settings_changed": OFFLINE_SETTINGS + [{"name": "kv_cache_dtype", "value": "fp8", "vllm_default": "auto",
                                                  "why": "the KV cache dtype under test"}]},
        {"output_tok_per_s": 6_400.0, "auto_output_tok_per_s": 6_150.0, "speedup_vs_auto": 6_400.0 / 6_150.0,
         "token_agreement": 0.975})
    tests[f"tests/benchmarks/test_vllm_settings.py::test_compile_modes[{slug}-variable]"] = _test(
        {"workload": "uniform-32-512", "requests": 320, "vllm_effective": VLLM_EFFECTIVE,
         "eager_effective": {**VLLM_EFFECTIVE, "cudagraph_mode": "NONE"}, "identical_requests": "16/16"},
        {"output_tok_per_s": 6_150.0, "eager_output_tok_per_s": 2_460.0, "speedup_vs_eager": 2.5,
         "token_agreement": 1.0})
    tests[f"tests/benchmarks/test_vllm_settings.py::test_prefix_caching_throughput[{slug}-shared-prefix]"] = _test(
        {"workload": "shared-prefix", "requests": 100, "block_size": 16, "predicted_primed_hits": PRIMED_HITS,
         "primed_counter_hits": PRIMED_COUNTER, "cold_prefix_hits": [COLD_HITS] * 3,
         "cold_counter_hits": [COLD_HITS] * 3, "no_reuse_prefix_hits": [0, 0, 0], "cold_hit_rate": COLD_HITS / 60_000},
        {"output_tok_per_s": 5_000.0, "cold_output_tok_per_s": 4_800.0, "no_reuse_output_tok_per_s": 2_000.0,
         "speedup_vs_no_reuse": 2.5, "primed_prefix_hits": PRIMED_HITS})
    for ctx, prefill, decode, peak in LONG_CONTEXTS:
        tests[f"tests/benchmarks/test_vllm_settings.py::test_long_context[{slug}-ctx{ctx}]"] = _test(
            {"context": ctx, "decode_tokens": 64, "block_size": 16, "max_model_len": 32_896,
             "vllm_effective": VLLM_EFFECTIVE},
            {"prefill_tok_per_s": prefill, "decode_tok_per_s": decode, "peak_blocks": peak})
    tests[f"tests/benchmarks/test_vllm_settings.py::test_engine_startup[{slug}-default]"] = _test(
        {"model_load_s": 3.0, "cold_compile_s": 20.0, "warm_compile_s": 4.0, "graph_capture_s": 7.0},
        {"cold_startup_s": 70.0, "warm_startup_s": 20.0})
    return tests


def empty_run(slug="synthetic-empty") -> dict:
    return {"schema_version": 1, "slug": slug, "gpu": {"name": "SYNTHETIC"}, "versions": {},
            "started": "2025-01-01T00:00:00", "finished": "2025-01-01T00:00:01", "interrupted": False, "tests": {}}


def _write(tmp_path: Path, doc, name="run.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "pagedbench", "report", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def _assert_png(path: Path):
    data = path.read_bytes()
    assert len(data) > 1000, path
    assert data.startswith(PNG_MAGIC), path


def _row(md: str, *cells: str) -> str:
    """The table row that starts with these cells (fails the test when there is none)."""
    prefix = "| " + " | ".join(cells) + " |"
    rows = [line for line in md.splitlines() if line.startswith(prefix)]
    assert rows, f"no row starting {prefix!r}"
    return rows[0]


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip("|").split("|")]


def _headings(md: str) -> list[str]:
    return [line[3:] for line in md.splitlines() if line.startswith("## ")]


def _section(md: str, title: str) -> str:
    """The text under the heading `title` (numbered or not) up to the next heading; fails when there is none."""
    for chunk in md.split("\n## ")[1:]:
        heading, _, body = chunk.partition("\n")
        if re.sub(r"^\d+\. ", "", heading) == title:
            return body
    raise AssertionError(f"no section {title!r} in {_headings(md)}")


ALL_PLOTS = ("memory_waste.png", "concurrent_users.png", "prefix_sharing.png", "max_num_seqs.png",
             "decode_attention.png", "memory_timeline.png", "serving_latency.png", "serving_throughput_latency.png")


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("report")
    path = write_report(synthetic_run(), out)
    return out, path.read_text()


def test_every_test_function_the_report_reads_exists():
    """A renamed test must fail here, not leave its report section empty."""
    defined = {node.name for path in (REPO / "tests" / "benchmarks").glob("*.py")
               for node in ast.walk(ast.parse(path.read_text(), str(path)))
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")}
    assert sorted(set(TEST_FUNCTIONS) - defined) == []


def test_cli_writes_report_and_pngs_to_default_dir(tmp_path):
    run = _write(tmp_path, synthetic_run("cli-slug"))
    proc = _cli(run, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "reports" / "cli-slug"
    assert (out / "report.md").is_file()
    for name in ALL_PLOTS:
        _assert_png(out / name)
    assert "cli-slug" in (out / "report.md").read_text()


def test_cli_out_option(tmp_path):
    run = _write(tmp_path, synthetic_run())
    proc = _cli(run, "--out", tmp_path / "custom", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "custom" / "report.md").is_file()
    assert not (tmp_path / "reports").exists()


def test_header_and_comparisons_summary(full_report):
    _, md = full_report
    assert md.startswith("# pagedbench report: synthetic-gpu")
    assert "SYNTHETIC GPU 80GB (80 GiB, driver 999.1)" in md
    assert "torch 0.0-synthetic" in md and "2025-01-01T00:42:00+00:00" in md
    # 3 memory-waste ok, 1 regressed, 1 improved, 1 new.
    assert _cells(_row(md, "ok", "regressed")) == ["ok", "regressed", "improved", "new"]
    idx = md.splitlines().index(_row(md, "ok", "regressed"))
    assert _cells(md.splitlines()[idx + 2]) == ["3", "1", "1", "1"]
    regressed = _row(md, "test_vllm_throughput[synthetic-gpu-uniform]", "output_tok_per_s")
    assert "-6.8%" in regressed and "REGRESSED" in regressed  # (6150 - 6600) / 6600


SECTION_TITLES = ["Memory waste, 100 variable-length users", "Concurrent users under a KV budget", "Prefix sharing",
                  "Internal fragmentation by block size", "Block pool size for a KV budget",
                  "Hugging Face generate (baseline)", "vLLM offline throughput", "Throughput vs max-num-seqs",
                  "Decode attention kernels", "Paged prefill (chunked)", "Memory over time", "Serving under load",
                  "Settings vLLM regresses in", "Settings vLLM was run with", "Tensor parallel"]


def test_sections_numbered_in_order(full_report):
    _, md = full_report
    assert _headings(md) == ["Comparison with the stored baseline", "Headline figures",
                             "Real-World Impact: capacity and cost",
                             *(f"{n}. {title}" for n, title in enumerate(SECTION_TITLES, 1))]


def test_tensor_parallel_section_from_the_kept_h200x2_runs(tmp_path):
    """The kept 2xH200 runs (device slug h200, tests h200x2) make an h200x2 report with the TP section,
    and a headline row named h200x2 with TP 2's figure and blocks per GPU."""
    runs = sorted((REPO / "reports" / "h200x2" / "runs").glob("*.json"))
    md = write_report(merge_runs([load_run(p) for p in runs], runs), tmp_path).read_text()
    assert md.startswith("# pagedbench report: h200x2")
    body = md.split("Tensor parallel", 2)[-1]
    blocks = [_cells(line) for line in body.splitlines() if line.startswith("| llama-3.1-8b | 16 |")
              or line.startswith("| llama-3.1-8b | 32 |")]
    assert blocks and all(int(r[4].replace(",", "")) == 2 * int(r[3].replace(",", "")) for r in blocks)
    assert "| llama-3.1-70b |" in body
    row = _cells(_row(md, "h200x2"))
    assert "(TP 2; TP 1" in row[1] and "per GPU" in row[4]


def test_tp_settings_in_the_settings_section(full_report):
    _, md = full_report
    assert "### Offline engine at tensor parallel 2" in md
    assert _row(md, "`pass_config.fuse_allreduce_rms`", "False", "True")


def test_settings_tier_changes_in_the_settings_section(full_report):
    _, md = full_report
    assert "### Settings tier (each case's engine" in md
    assert _row(md, "`kv_cache_dtype`", "fp8", "auto")


def test_a_test_that_failed_before_measuring_is_named_with_its_reason(tmp_path):
    run = load_run(REPO / "reports" / "h200x2" / "runs" / "02-tp-compare.json")
    entry = {"outcome": "failed", "slug": "h200x2", "params": {}, "series": {}, "metrics": {}, "comparisons": [],
             "failure": "vLLM failed to start (tensor_parallel_size=2): CUBLAS_STATUS_EXECUTION_FAILED"}
    run["tests"]["tests/benchmarks/test_tensor_parallel.py::test_llama70b_tp2[h200x2]"] = entry
    md = write_report(run, tmp_path).read_text()
    assert "- `tests/benchmarks/test_tensor_parallel.py::test_llama70b_tp2[h200x2]`: vLLM failed to start" in md
    assert "3 passed, 1 failed" in md


def test_memory_waste_table_in_bytes(full_report):
    _, md = full_report
    assert _section(md, "Memory waste, 100 variable-length users")
    for label, bpt in (("LLaMA-7B fp16", LLAMA_7B_BPT), ("Llama-3.1-8B bf16", LLAMA31_8B_BPT)):
        used = TOKENS_HELD * bpt
        contiguous = N_REQUESTS * MAX_SEQ_LEN * bpt
        for bs, peak in PEAK_BLOCKS.items():
            paged = peak * bs * bpt
            row = _cells(_row(md, label, str(bs), f"paged, block {bs}"))
            assert row[3:] == [f"{paged / GB:,.2f}", f"{used / GB:,.2f}", f"{(paged - used) / GB:,.2f}",
                               f"{100 * (paged - used) / paged:.1f}%"]
            row = _cells(_row(md, label, str(bs), "contiguous (max_seq_len each)"))
            assert row[3:] == [f"{contiguous / GB:,.2f}", f"{used / GB:,.2f}", f"{(contiguous - used) / GB:,.2f}",
                               f"{100 * (contiguous - used) / contiguous:.1f}%"]
    # LLaMA-7B: 100 x 2048 tokens x 0.5 MiB = 107.37 GB reserved up front.
    assert "| 107.37 |" in _row(md, "LLaMA-7B fp16", "16", "contiguous (max_seq_len each)")


def test_concurrent_users_table(full_report):
    _, md = full_report
    row = _cells(_row(md, "16", "16,384"))
    budget_gb = 16_384 * LLAMA_7B_BPT / GB  # 8.59 GB
    assert row[2] == f"{budget_gb:.2f}" == "8.59"
    assert row[6:] == ["8", "30", "29", "29", "0", f"{29 / 8:.1f}×"]


def test_prefix_sharing_table(full_report):
    _, md = full_report
    off = _cells(_row(md, "16", "100", "500 + 100", "off"))
    on = _cells(_row(md, "16", "100", "500 + 100", "on"))
    assert off[4] == "3,800" and on[4] == "1,031"
    assert off[6] == f"{3_800 * 16 * LLAMA_7B_BPT / GB:.2f}"
    assert on[6] == f"{1_031 * 16 * LLAMA_7B_BPT / GB:.2f}"
    assert on[7] == f"{100 * 3_069 / 3_800:.1f}%"
    assert on[8] == f"{100 * (1 - 1_031 / 3_800):.1f}%"
    assert off[8] == "–"


def test_fragmentation_table(full_report):
    _, md = full_report
    section = _section(md, "Internal fragmentation by block size")
    for bs, peak in PEAK_BLOCKS.items():
        row = _cells(_row(section, str(bs), f"{TOKENS_HELD:,}"))
        assert row[4] == f"{peak * bs:,}"
        assert row[5] == f"{peak * bs - TOKENS_HELD:,}"
        assert row[6] == f"{(peak * bs - TOKENS_HELD) * LLAMA_7B_BPT / GB:.3f}"
        assert row[7] == f"{100 * (peak * bs - TOKENS_HELD) / (peak * bs):.2f}%"


def test_kernel_table_uses_batch_32_slice(full_report):
    _, md = full_report
    section = _section(md, "Decode attention kernels")
    assert "batch = 32, block_size = 16, order = shuffled" in section
    assert "(fa3_contiguous)" in section and "3,000 GB/s" in section
    visible = section.split("<details>")[0]
    assert visible.count("| fa3 | paged |") == 4  # one row per context, batch 32 only
    assert visible.count("| fa3_contiguous | contiguous |") == 4
    assert "All 32 kernel configurations" in section
    assert "![decode latency vs context](decode_attention.png)" in section


def test_kernel_table_paged_overhead_from_param(full_report):
    _, md = full_report
    section = _section(md, "Decode attention kernels").split("<details>")[0]
    assert _cells(_row(section, "triton", "paged", "2,048"))[-1] == "+25.0%"
    assert _cells(_row(section, "flashinfer", "paged", "2,048"))[-1] == "-2.0%"  # paged faster: negative
    assert _cells(_row(section, "fa3", "paged", "2,048"))[-1] == "+0.0%"
    assert _cells(_row(section, "fa3_contiguous", "contiguous", "2,048"))[-1] == "–"


def test_kernel_fp8_table(full_report):
    _, md = full_report
    section = _section(md, "Decode attention kernels")
    fp8 = section.split("### fp8 KV cache")[1]
    cells = _cells(_row(fp8, "flashinfer", "32", "8,192"))
    assert cells[0] == "flashinfer" and cells[6] == "1.60×" and cells[7:] == ["0.0040", "0.0310"]
    assert _cells(_row(fp8, "triton", "32", "8,192"))[6] == "1.25×"
    assert "| flashinfer | paged |" in section.split("### fp8 KV cache")[0]  # the bf16 table is unchanged


def test_prefill_table(full_report):
    _, md = full_report
    section = _section(md, "Paged prefill (chunked)")
    assert _cells(_row(section, "8", "8,192")) == ["8", "8,192", "16", "512", "930.0", "500.0"]


def test_concurrent_users_blocks_table(full_report):
    _, md = full_report
    section = _section(md, "Concurrent users under a KV budget")
    row = _cells(_row(section, "16", "29", "1,022"))
    assert row[3] == "1,022"
    assert row[4] == f"{1_022 * 16 * LLAMA_7B_BPT / GB:.2f}"          # paged GB
    assert row[5] == f"{29 * 2048 * LLAMA_7B_BPT / GB:.2f}"           # contiguous GB, same 29 users
    assert row[6] == f"{100 * (16_384 - 32) / (29 * 2048):.1f}%"


def test_sweep_saturation(full_report):
    _, md = full_report
    assert "within 10 % of the best throughput): **64**." in md


def test_other_sections_present(full_report):
    _, md = full_report
    assert _cells(_row(md, "llama-3.1-8b", "16", "20.00"))[3:] == [f"{(20 << 30) // (16 * LLAMA31_8B_BPT):,}"] * 2 \
        + ["0", "20.00"]
    assert _cells(_row(md, "llama-3.1-8b", "static"))[4:] == ["530.0", "–", "–", "–"]
    assert _cells(_row(md, "llama-3.1-8b", "uniform-32-512"))[2:] == ["–", "6,150.0", "12,400.0", "22.40", "–",
                                                                      "11.6×"]
    assert _row(md, "256", "–", "6,150.0")
    assert "Not in this run" not in md
    assert "lot skipped" not in md


def test_all_plots_written(full_report):
    out, md = full_report
    for name in ALL_PLOTS:
        _assert_png(out / name)
        assert f"]({name})" in md


def test_figures_table():
    table = figures_table(synthetic_run()).splitlines()
    assert len(table) == 3
    assert _cells(table[0]) == ["GPU", "vLLM output tok/s", "HF tok/s", "speed-up", "blocks per block size",
                                "measured waste", "best decode GB/s", "TTFT p99 ms (variable, 16 req/s)",
                                "SLO capacity (variable)"]
    row = _cells(table[2])
    b16, b32 = ((20 << 30) // (bs * LLAMA31_8B_BPT) for bs in (16, 32))
    assert row[:5] == ["synthetic-gpu", "6,150", "530", "11.6×", f"16: {b16:,}; 32: {b32:,} (in 20 GiB)"]
    waste16 = 100 * (PEAK_BLOCKS[16] * 16 - TOKENS_HELD) / (PEAK_BLOCKS[16] * 16)
    assert row[5].startswith(f"paged {waste16:.1f}% (block 16)")
    assert row[6].endswith("(flashinfer)")
    assert row[7:] == ["150", f"{CAPACITY_REQ_S:.2f} req/s"]  # the variable shape's r16 TTFT p99, its capacity


def test_figures_table_without_data_shows_dashes():
    row = _cells(figures_table(empty_run()).splitlines()[2])
    assert row == ["synthetic-empty"] + ["–"] * 8


def test_empty_run_says_not_in_this_run(tmp_path):
    md = write_report(empty_run(), tmp_path).read_text()
    assert md.count("_Not in this run") == 16  # 15 sections and the capacity table
    assert md.count("plot skipped") == 7
    assert not list(tmp_path.glob("*.png"))


def test_partial_run_skips_absent_plots(tmp_path):
    run = synthetic_run()
    run["tests"] = {k: v for k, v in run["tests"].items() if "test_max_num_seqs_sweep" in k}
    md = write_report(run, tmp_path).read_text()
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["max_num_seqs.png"]
    assert _section(md, "Memory waste, variable-length users") and md.count("_Not in this run") == 15


def test_chunks_merge(tmp_path):
    run = synthetic_run()
    blocks, kernels = copy.deepcopy(run), copy.deepcopy(run)
    blocks["tests"] = {k: v for k, v in run["tests"].items() if "test_memory_waste" in k}
    kernels["tests"] = {k: v for k, v in run["tests"].items() if "decode" in k}
    kernels["finished"] = "2025-01-01T03:00:00+00:00"
    paths = [_write(tmp_path, blocks, "a.json"), _write(tmp_path, kernels, "b.json")]
    md = report(paths, tmp_path / "out").read_text()
    assert _section(md, "Memory waste, 100 variable-length users") and "| fa3 | paged |" in md
    assert "2025-01-01T03:00:00+00:00" in md
    other = _write(tmp_path, synthetic_run("other-gpu"), "c.json")
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
    vllm_chunk["tests"] = {repeat_id: _test({"workload": "repeat-16x128", "model": "llama-3.1-8b", "requests": 16},
                                            {"output_tok_per_s": 2_062.5})}  # SYNTHETIC: 5x HF's
    paths = [_write(tmp_path, hf_chunk, "hf.json"), _write(tmp_path, vllm_chunk, "vllm.json")]
    md = report(paths, tmp_path / "out").read_text()
    assert _cells(_row(md, "llama-3.1-8b", "repeat-16x128"))[-1] == "5.0× (across runs)"
    assert "'across runs': the two tests ran in separate sessions" in md
    assert _cells(_row(md, "synthetic-gpu"))[3] == "5.0× (across runs)"  # the headline figures
    # A recorded speed-up (both sides in one session) is shown as measured: the synthetic run's 11.6x.
    assert "across runs" not in write_report(synthetic_run(), tmp_path / "one").read_text()
    # HF's batch of other requests (64 new tokens) is no pair for the repeat workload: nothing is divided.
    hf_chunk["tests"][hf_id]["params"]["new_tokens"] = 64
    _write(tmp_path, hf_chunk, "hf.json")
    assert _cells(_row(report(paths, tmp_path / "out").read_text(), "llama-3.1-8b", "repeat-16x128"))[-1] == "–"



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
    path = _write(tmp_path, BAD_INPUTS[case], f"bad-{case}.json")
    proc = _cli(path, cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert f"bad-{case}.json" in proc.stderr
    assert "Traceback" not in proc.stderr
    with pytest.raises(PagedBenchError, match=f"bad-{case}.json"):
        report([path], tmp_path / "out")


def test_missing_file_exits_2(tmp_path):
    proc = _cli(tmp_path / "nope.json", cwd=tmp_path)
    assert proc.returncode == 2 and "nope.json" in proc.stderr


def test_stale_plot_removed(tmp_path):
    write_report(synthetic_run(), tmp_path)
    assert (tmp_path / "decode_attention.png").exists()
    write_report(empty_run(), tmp_path)
    assert not (tmp_path / "decode_attention.png").exists()


# ---- the "Real-World Impact" capacity table ----------------------------------------------
# SYNTHETIC inputs added to synthetic_run(): a larger static-cache HF batch (the table must use the
# largest), a block-8 concurrent-users result (block 16 must still win) and the repeat workload of
# vLLM (the table must use the variable-length one).

HF_STATIC_B64_TOK_S, HF_NEW_TOKENS = 1_100.0, 128
PAGED_REQ_S, PAGED_OUT_TOK_S = 22.4, 6_150.0          # synthetic_run's uniform-32-512 vLLM result
PAGED_USERS, CONTIGUOUS_USERS = 29, 8                  # synthetic_run's block-16 concurrent-users result


def capacity_run() -> dict:
    run = synthetic_run()
    slug = run["slug"]
    run["tests"][f"tests/test_hf.py::test_hf_generate[{slug}-static-b64]"] = _test(
        {"cache": "static", "batch": 64, "new_tokens": HF_NEW_TOKENS, "model": "llama-3.1-8b"},
        {"tok_per_s": HF_STATIC_B64_TOK_S})
    run["tests"][f"tests/test_vllm_scheduler.py::test_concurrent_users[{slug}-bs8]"] = _test(
        {"block_size": 8, "budget_tokens": 16_384, "max_seq_len": 2048, "avg_len": 500, "n_offered": 64},
        {"peak_running": 31, "contiguous_users": 7})
    run["tests"][f"tests/test_vllm_throughput.py::test_vllm_throughput[{slug}-repeat]"] = _test(
        {"workload": "repeat-16x128", "model": "llama-3.1-8b", "requests": 16},
        {"output_tok_per_s": 2_000.0, "req_per_s": 15.6})
    return run


def _capacity_section(md: str) -> str:
    return _section(md, "Real-World Impact: capacity and cost")


def _expected_rows(hourly: float, paged_users=PAGED_USERS, contiguous_users=CONTIGUOUS_USERS):
    """The table's rows, worked out here: each request makes new_tokens tokens; a day is 86,400 s;
    1M requests take 1e6 / (req/s x 3,600) GPU-hours."""
    std_rps = HF_STATIC_B64_TOK_S / HF_NEW_TOKENS                  # 8.59375 req/s
    rows = {}
    for name, users, rps in (("standard (contiguous pre-allocation)", contiguous_users, std_rps),
                             ("paged (vLLM)", paged_users, PAGED_REQ_S)):
        rows[name] = [name, str(users), f"{rps:.2f}", f"{rps * 86_400:,.0f}", f"${hourly * 1e6 / (rps * 3_600):,.2f}"]
    rows["paged ÷ standard"] = ["paged ÷ standard", f"{paged_users / contiguous_users:.1f}×",
                                f"{PAGED_REQ_S / std_rps:.1f}×", f"{PAGED_REQ_S / std_rps:.1f}×",
                                f"{std_rps / PAGED_REQ_S:.2f}×"]
    return rows


def test_capacity_table_from_measured_figures(tmp_path):
    section = _capacity_section(write_report(capacity_run(), tmp_path).read_text())
    for name, expected in _expected_rows(2.50).items():
        assert _cells(_row(section, name)) == expected
    # By hand, for the default $2.50/h: standard 1,100 / 128 = 8.59 req/s = 742,500 req/day,
    # 2.5e6 / (8.59375 x 3,600) = $80.81 per 1M; paged 22.4 req/s = 1,935,360 req/day, $31.00 per 1M.
    assert _cells(_row(section, "standard (contiguous pre-allocation)"))[2:] == ["8.59", "742,500", "$80.81"]
    assert _cells(_row(section, "paged (vLLM)"))[2:] == ["22.40", "1,935,360", "$31.00"]
    assert "**$2.50 per GPU-hour**" in section
    assert "pre-allocated static cache at batch 64" in section      # the largest HF static batch
    assert "block 16, a 16,384-token KV budget" in section          # block 16 preferred over block 8
    assert "uniform-32-512 workload" in section and "repeat-16x128" not in section
    assert f"{PAGED_OUT_TOK_S / PAGED_REQ_S:.0f} vs 128 output tokens each" in section  # 275 vs 128
    assert "Not in this run" not in section


def test_capacity_table_smallest_block_without_16(tmp_path):
    run = capacity_run()
    run["tests"] = {k: v for k, v in run["tests"].items() if not k.endswith("-bs16]")}
    section = _capacity_section(write_report(run, tmp_path).read_text())
    assert _cells(_row(section, "paged (vLLM)"))[1] == "31"          # block 8 < block 32
    assert _cells(_row(section, "standard (contiguous pre-allocation)"))[1] == "7"
    assert "block 8, a 16,384-token KV budget" in section


def test_gpu_hourly_cost_option_changes_cost(tmp_path):
    run = _write(tmp_path, capacity_run())
    proc = _cli(run, "--out", tmp_path / "dear", "--gpu-hourly-cost", "4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    dear = _capacity_section((tmp_path / "dear" / "report.md").read_text())
    proc = _cli(run, "--out", tmp_path / "default", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    default = _capacity_section((tmp_path / "default" / "report.md").read_text())
    for hourly, section in ((4.0, dear), (2.50, default)):
        assert f"**${hourly:.2f} per GPU-hour**" in section
        for name, expected in _expected_rows(hourly).items():
            assert _cells(_row(section, name)) == expected
    # Only the cost column moves with the hourly cost: 4 / 2.5 = 1.6x dearer.
    assert _cells(_row(dear, "paged (vLLM)"))[:4] == _cells(_row(default, "paged (vLLM)"))[:4]
    assert _cells(_row(dear, "paged (vLLM)"))[4] == f"${4.0 * 1e6 / (PAGED_REQ_S * 3_600):,.2f}" == "$49.60"
    md = report([run], tmp_path / "api", gpu_hourly_cost=0.125).read_text()
    assert "**$0.125 per GPU-hour**" in md  # not rounded to cents in the caption


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "cheap"])
def test_gpu_hourly_cost_rejects_bad_values(tmp_path, bad):
    proc = _cli(_write(tmp_path, capacity_run()), "--out", tmp_path / "out", "--gpu-hourly-cost", bad, cwd=tmp_path)
    assert proc.returncode == 2 and "--gpu-hourly-cost" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_cli_default_cost_is_the_reports():
    from pagedbench import cli
    from pagedbench.report import capacity

    assert cli._parser().parse_args(["report", "run.json"]).gpu_hourly_cost == capacity.DEFAULT_GPU_HOURLY_COST == 2.50


def test_cli_loads_matplotlib_only_for_a_report(tmp_path):
    code = ("import sys; from pagedbench.cli import main; "
            f"main(['readme', '--readme', {str(tmp_path / 'none.md')!r}]); print('matplotlib' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.stdout.strip() == "False", proc.stderr


def _without(run: dict, *needles: str) -> dict:
    run["tests"] = {k: v for k, v in run["tests"].items() if not any(n in k for n in needles)}
    return run


@pytest.mark.parametrize("drop, says", [
    (("test_hf_generate[synthetic-gpu-static",), "tok_per_s of test_hf_generate with the static cache"),
    (("-uniform]",), "req_per_s of test_vllm_throughput on the variable-length workload"),
    (("test_concurrent_users",), "test_concurrent_users (max batch, both approaches)"),
])
def test_capacity_missing_input_says_which(tmp_path, drop, says):
    section = _capacity_section(write_report(_without(capacity_run(), *drop), tmp_path).read_text())
    assert section.strip().startswith("_Not in this run: ")
    assert says in section
    assert "| approach |" not in section
    for other in ("tok_per_s of test_hf_generate", "req_per_s of test_vllm_throughput", "test_concurrent_users (max"):
        if not says.startswith(other):
            assert other not in section  # only what is missing is named


def test_capacity_missing_metric_of_concurrent_users(tmp_path):
    run = capacity_run()
    del run["tests"]["tests/test_vllm_scheduler.py::test_concurrent_users[synthetic-gpu-bs16]"]["metrics"][
        "contiguous_users"]
    section = _capacity_section(write_report(run, tmp_path).read_text())
    assert "_Not in this run: contiguous_users of test_concurrent_users, block 16 (standard max batch)._" in section


# ---- python -m pagedbench readme ------------------------------------------------------

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
    _write(runs, new, "a-newer.json")
    _write(runs, old, "b-older.json")
    cpu = synthetic_run("cpu")
    cpu["tests"] = {k: v for k, v in cpu["tests"].items()
                    if any(f in k for f in ("test_memory_waste", "test_concurrent_users", "test_prefix_sharing"))}
    (reports / "cpu" / "runs").mkdir(parents=True)
    _write(reports / "cpu" / "runs", cpu, "cpu.json")
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
    row = _cells(_row(figures, "synthetic-gpu"))
    assert row[1] == "6,150"  # from the newer chunk, though its file name sorts first
    assert row[-2] == "2025-01-01"
    assert "| cpu |" not in figures  # the CPU run has its own block

    tables = first.split("<!-- cpu-tables:start -->")[1].split("<!-- cpu-tables:end -->")[0]
    assert "converted to LLaMA-7B fp16 bytes" in tables and "tiny-llama" in tables
    for title in ("Memory waste, 100 variable-length users", "Concurrent users under a KV budget", "Prefix sharing",
                  "Internal fragmentation by block size"):
        assert f"### {title}" in tables
    assert "Llama-3.1-8B bf16" not in tables  # LLaMA-7B fp16 only
    paged16 = _cells(_row(tables, "16", "paged, block 16"))
    assert paged16[2] == f"{PEAK_BLOCKS[16] * 16 * LLAMA_7B_BPT / GB:,.2f}"


def test_readme_links_reports_that_exist(tmp_path):
    from pagedbench.cli import main

    readme, reports = _readme_tree(tmp_path)
    report(sorted((reports / "synthetic-gpu" / "runs").glob("*.json")), reports / "synthetic-gpu")
    assert main(["readme", "--readme", str(readme), "--reports", str(reports)]) == 0
    row = _cells(_row(readme.read_text(), "synthetic-gpu"))
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

def _load_row(key, offered, prompts, req_s, ttft50, ttft99, tpot50, tpot99, usage_pct, preemptions):
    """The cells a load table shows after its first columns, worked out from syn_run's inputs."""
    meets = ttft99 <= SLO_TTFT_MS and tpot99 <= SLO_TPOT_MS
    return [f"{req_s:.2f}", f"{req_s * SERVING_OUT_LEN:,.0f}", f"{ttft50:,.1f}", f"{ttft99:,.1f}", f"{tpot50:.1f}",
            f"{tpot99:.1f}", f"{3 * tpot99:.1f}", f"{ttft99 + SERVING_OUT_LEN * tpot50:,.0f}",
            f"{req_s if meets else req_s / 10:.2f}", f"{usage_pct:.1f}%", f"{preemptions:.0f}",
            "yes" if meets else "**no**"]


def test_serving_states_the_slo(full_report):
    _, md = full_report
    section = _section(md, "Serving under load")
    assert "p99 TTFT ≤ 2,000 ms and p99 TPOT ≤ 100 ms" in section and "MLPerf" in section


def test_serving_rates_table_and_capacity(full_report):
    _, md = full_report
    section = _section(md, "Serving under load")
    variable = section.split("### Request rates: variable")[1].split("###")[0]
    assert "Prompts of 272 tokens, outputs of 272 (each length drawn uniformly within ±88.2 % of it)" in variable
    labels = {"r1": "1 req/s", "r4": "4 req/s", "r16": "16 req/s", "rinf": "∞ (all at once)"}
    for i, load in enumerate(RATE_LOADS):
        row = _cells(_row(variable, labels[load[0]], str(load[2])))
        assert row[2:] == _load_row(*load, usage_pct=5 * (i + 1), preemptions=3 * i)
    assert _cells(_row(variable, "∞ (all at once)"))[-1] == "**no**"  # 2,600 ms TTFT p99 > 2,000
    assert (f"SLO capacity: **{CAPACITY_REQ_S:.2f} req/s** (interpolated between the last rate that met the SLO "
            "and the first that did not).") in variable
    assert "![serving latency vs request rate](serving_latency.png)" in variable
    long_prompt = section.split("### Request rates: long_prompt")[1].split("###")[0]
    assert "(every request the same)" in long_prompt
    assert "SLO capacity: **no measured rate meets the SLO** (even the lowest measured rate missed it)." in long_prompt
    assert "serving_latency.png" not in long_prompt  # the latency plot is the variable shape's


def test_serving_capacity_at_least(tmp_path):
    """Every rate met the SLO: the text the test recorded ('>= …') is shown with what the bound means."""
    run = synthetic_run()
    params = run["tests"]["tests/benchmarks/test_serving.py::test_serving_rates[synthetic-gpu-variable]"]["params"]
    params.update(slo_capacity=">= 31.31 req/s", slo_capacity_bound="at least")
    md = write_report(run, tmp_path).read_text()
    assert ("SLO capacity: **>= 31.31 req/s** (every measured rate met the SLO, so the limit lies above the highest "
            "rate the server sustained).") in _section(md, "Serving under load")
    assert _cells(figures_table(run).splitlines()[2])[-1] == ">= 31.31 req/s"


def test_serving_concurrency_table(full_report):
    _, md = full_report
    section = _section(md, "Serving under load").split("### Concurrency")[1].split("###")[0]
    for i, load in enumerate(CONCURRENCY_LOADS):
        row = _cells(_row(section, load[0].removeprefix("c"), str(load[2])))
        assert row[2:-1] == _load_row(*load, usage_pct=5 * (i + 1), preemptions=3 * i)
        assert row[-1] == f"{min(load[2], 48 * (i + 1))}"  # running peak
    assert "![output tok/s vs TPOT p50 over concurrency](serving_throughput_latency.png)" in section


def test_serving_prefix_caching_table(full_report):
    _, md = full_report
    section = _section(md, "Serving under load").split("### Prefix caching on vs off")[1]
    assert "100 requests at once, each 500 shared + 100 own prompt tokens, block size 16" in section
    assert _cells(_row(section, "on")) == ["on", "300.0", "400.0", "10.0", f"{100 * SERVING_OUT_LEN:,}",
                                           f"{PREFIX_HIT_TOKENS:,}", f"{100 * PREFIX_HIT_TOKENS / 60_000:.1f}%",
                                           "0.25×"]
    assert _cells(_row(section, "off")) == ["off", "1,200.0", "1,560.0", "16.6", f"{45 * SERVING_OUT_LEN:,}",
                                            "–", "–", "–"]
    assert PREFIX_HIT_TOKENS == 49_104  # 99 requests x 31 full blocks of 16 tokens


def test_settings_table(full_report):
    _, md = full_report
    section = _section(md, "Settings vLLM was run with")
    offline, served = section.split("### Server")
    assert _cells(_row(offline, "`seed`")) == ["`seed`", "0", "None", "the same sampling in every run"]
    assert _cells(_row(offline, "`disable_log_stats`")) == ["`disable_log_stats`", "False", "True", "vLLM's counters"]
    assert offline.count("| `seed` |") == 1  # throughput and reference tests share the engine: listed once
    assert _cells(_row(offline, "`max_num_seqs`")) == ["`max_num_seqs`", "1,024"]  # vllm_effective
    assert _cells(_row(offline, "`cudagraph_mode`")) == ["`cudagraph_mode`", "FULL_AND_PIECEWISE"]
    assert _cells(_row(served, "`load_format`")) == ["`load_format`", "dummy", "auto", "random weights"]
    assert served.count("| `max_model_len` |") == 1  # rates and concurrency tests: one server
    assert "Recorded by `test_vllm_bench_reference`, `test_vllm_throughput`." in offline
    assert "Recorded by `test_serving_concurrency`, `test_serving_rates`." in served


def test_settings_name_a_test_that_recorded_none(tmp_path):
    """A merged run's older throughput result has no settings: the table says it does not describe that test."""
    run = synthetic_run()
    params = run["tests"]["tests/test_vllm_throughput.py::test_vllm_throughput[synthetic-gpu-uniform]"]["params"]
    del params["settings_changed"], params["vllm_effective"]
    offline = _section(write_report(run, tmp_path).read_text(), "Settings vLLM was run with").split("### Server")[0]
    assert ("Recorded by `test_vllm_bench_reference`; not by `test_vllm_throughput` (a run from before the suite "
            "recorded them).") in offline
    assert offline.rstrip().endswith("_Not in this run._")  # no vllm_effective either


def test_reference_comparison_in_throughput_section(full_report):
    _, md = full_report
    section = _section(md, "vLLM offline throughput").split("### Against `vllm bench throughput`")[1]
    assert _cells(_row(section, "uniform-32-512", "320")) == [
        "uniform-32-512", "320", "6,200.0", "6,100.0", f"{REFERENCE_SUITE / REFERENCE_BENCH:.3f}"]
    assert "more than 3 % on this kind of device" in section  # a GPU slug: the 3 % the issue asks for


def test_serving_not_in_run(tmp_path):
    """Only the prefix-caching test ran: the other parts say so, their plots are skipped, nothing else breaks."""
    run = synthetic_run()
    run["tests"] = {k: v for k, v in run["tests"].items() if "test_serving_prefix_caching" in k}
    md = write_report(run, tmp_path).read_text()
    section = _section(md, "Serving under load")
    assert section.count("_Not in this run; plot skipped._") == 2  # rates and concurrency
    assert "| on | 300.0 |" in section
    assert not list(tmp_path.glob("serving_*.png"))
    assert _section(md, "Settings vLLM was run with").strip() == "_Not in this run._"
    assert _section(md, "vLLM offline throughput").strip() == "_Not in this run._"
    assert _cells(figures_table(run).splitlines()[2])[-2:] == ["–", "–"]


def test_reference_without_throughput(tmp_path):
    """The reference test kept in its own run file: its comparison shows though the throughput table is absent."""
    run = synthetic_run()
    run["tests"] = {k: v for k, v in run["tests"].items() if "test_vllm_bench_reference" in k}
    md = write_report(run, tmp_path).read_text()
    section = _section(md, "vLLM offline throughput")
    assert section.strip().startswith("_Not in this run._")
    assert "| uniform-32-512 | 320 | 6,200.0 |" in section
    settings = _section(md, "Settings vLLM was run with")
    assert "| `seed` |" in settings and settings.count("_Not in this run._") == 2  # effective values, server


def test_settings_tier_fp8_row_and_prefix_hits(full_report):
    _, md = full_report
    section = _section(md, "Settings vLLM regresses in")
    fp8 = section.split("### fp8 KV cache")[1].split("###")[0]
    assert "The same KV budget, 4.00 GiB, block size 16" in fp8
    assert _cells(_row(fp8, "bfloat16 (auto)")) == ["bfloat16 (auto)", f"{AUTO_BLOCKS:,}", f"{USERS['bfloat16']:,}"]
    assert _cells(_row(fp8, "fp8")) == ["fp8", f"{FP8_BLOCKS:,}", f"{USERS['fp8']:,}"]
    assert (AUTO_BLOCKS, FP8_BLOCKS, USERS["bfloat16"], USERS["fp8"]) == (2_048, 4_096, 60, 120)
    assert _cells(_row(fp8, "fp8", "uniform-32-512")) == ["fp8", "uniform-32-512", "320", "6,400.0", "6,150.0",
                                                         "1.04×", "60,000", "30,000", "97.5%", "14/16"]
    prefix = section.split("### Prefix caching under load")[1].split("###")[0]
    assert _cells(_row(prefix, "primed (system prompt cached first)")) == [
        "primed (system prompt cached first)", "5,000.0", f"{PRIMED_HITS:,}", "19,200 / 19,216 / 19,200"]
    assert _cells(_row(prefix, "cold (nothing cached before the round)"))[2:] == [f"{COLD_HITS:,}", f"{COLD_HITS:,}"]
    assert _cells(_row(prefix, "no reuse (a cache salt per request)"))[1:] == ["2,000.0", "0", "–"]
    assert (f"Primed hits: **{PRIMED_HITS:,}** tokens, summed over the requests' own cached-token counts (predicted "
            f"{PRIMED_HITS:,}: every request takes the system prompt's full blocks); vLLM's `vllm:prefix_cache_hits` "
            "counter: 19,200, 19,216 and 19,200 in its 3 rounds. The requests' count is what the test asserts") in prefix
    assert PRIMED_HITS == 49_600  # 100 requests x 31 full blocks of 16 tokens
    assert "Primed ÷ no reuse: **2.50×**" in prefix and f"{100 * COLD_HITS / 60_000:.1f}% of their prompt" in prefix


def test_settings_tier_compile_long_context_startup(full_report):
    _, md = full_report
    section = _section(md, "Settings vLLM regresses in")
    assert _cells(_row(section, "uniform-32-512", "320", "6,150.0")) == [
        "uniform-32-512", "320", "6,150.0", "2,460.0", "2.50×", "100.0%", "16/16", "FULL_AND_PIECEWISE"]
    for ctx, prefill, decode, peak in LONG_CONTEXTS:
        assert _cells(_row(section, f"{ctx:,}", "64", "16")) == [
            f"{ctx:,}", "64", "16", f"{prefill:,.1f}", f"{decode:.1f}", f"{peak:,}", f"{math.ceil((ctx + 64) / 16):,}"]
    startup = section.split("### Start-up")[1]
    assert _cells(startup.splitlines()[4]) == ["cold start s", "warm start s", "model load s", "cold compile s",
                                               "warm compile s", "CUDA graph capture s"]
    assert _cells(_row(startup, "70.0")) == ["70.0", "20.0", "3.0", "20.0", "4.0", "7.0"]


def test_settings_tier_failed_test_without_metrics(tmp_path):
    """A later run's fp8 throughput test failed before measuring: its part says so, the rest is unchanged."""
    run, failed = synthetic_run(), copy.deepcopy(empty_run("synthetic-gpu"))
    node = "tests/benchmarks/test_vllm_settings.py::test_kv_cache_dtype_throughput[synthetic-gpu-fp8]"
    failed["tests"] = {node: {"outcome": "failed", "params": {}, "metrics": {}, "series": {}, "comparisons": [],
                              "failure": "vLLM failed to start"}}
    paths = [_write(tmp_path, run, "a.json"), _write(tmp_path, failed, "b.json")]
    md = report(paths, tmp_path / "out").read_text()
    fp8 = _section(md, "Settings vLLM regresses in").split("### fp8 KV cache")[1].split("###")[0]
    assert _cells(_row(fp8, "fp8")) == ["fp8", f"{FP8_BLOCKS:,}", f"{USERS['fp8']:,}"]
    assert fp8.rstrip().endswith("_Not in this run._") and "uniform-32-512" not in fp8
    assert f"- `{node}`: vLLM failed to start" in md


def test_settings_tier_from_the_kept_h200_runs(tmp_path):
    """The kept H200 runs: fp8 holds twice bf16's blocks in the same budget; the primed round's hits are the
    arithmetic's, with vLLM's counter (short of it there) beside them."""
    runs = sorted((REPO / "reports" / "h200" / "runs").glob("*.json"))
    md = write_report(merge_runs([load_run(p) for p in runs], runs), tmp_path).read_text()
    section = _section(md, "Settings vLLM regresses in")
    assert _cells(_row(section, "fp8")) == ["fp8", "8,192", "240"]
    assert _cells(_row(section, "bfloat16 (auto)")) == ["bfloat16 (auto)", "4,096", "120"]
    assert "Primed hits: **126,976** tokens" in section and "counter: 48,608 in each of 3 rounds" in section
    assert _row(section, "8,192", "64", "16") and _row(section, "32,768", "64", "16")
