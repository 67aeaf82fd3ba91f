"""Tensor parallelism through vLLM's distributed engine (multiprocessing executor over NCCL).

Ids carry the multi-GPU slug (`h200x2`), so `-k h200x2` selects them; on fewer GPUs they skip.
Each GPU stores its share of the KV heads: the per-GPU bytes per token at TP=n decide the pool.
"""

import pytest

from pagedbench.engines.changed_settings import changed_settings
from pagedbench.engines.engine_settings import block_pool_settings, expected_blocks, serving_settings
from pagedbench.gate import tolerance as tol
from pagedbench.meters.device_timing import NvmlSampler, timed_rounds
from pagedbench.prediction import kv_arithmetic as kv
from pagedbench.workloads import tier_sizes as tiers
from pagedbench.workloads.model import GIB, load_shape, resolve_model_dir

pytestmark = [pytest.mark.throughput, pytest.mark.tensor_parallel(2)]
TP = 2


def measure(benchmark, engine, wl, rounds):
    """(output tok/s per round's median, seconds of each round, per-GPU NVML peaks in GiB)."""
    with NvmlSampler(0) as gpu0, NvmlSampler(1) as gpu1:
        results = timed_rounds(benchmark, lambda: engine.timed_generate(wl), rounds)
    return [t for _, _, t in results], results[-1][1], (gpu0.peak_gib, gpu1.peak_gib)


def assert_pool_bounds(blocks: int, block_size: int, bytes_per_token: int, kv_bytes: int):
    """The pool is the largest whole number of blocks the KV bytes hold: bounded from both sides."""
    block_bytes = block_size * bytes_per_token
    assert blocks * block_bytes <= kv_bytes < (blocks + 1) * block_bytes, \
        f"{blocks} blocks of {block_bytes} B against {kv_bytes} B of KV cache"


def test_tp_engine_lists_what_it_changes():
    """The one setting the TP throughput engine changes beyond the one-GPU engine's reaches vLLM and
    is listed with its reason; TP 1 keeps vLLM's default."""
    shape = load_shape("llama-3.1-8b")
    model_dir, sizes = resolve_model_dir("llama-3.1-8b"), tiers.sizes_for("gpu")
    tp2, tp1 = (serving_settings(model_dir, shape, sizes, tp=n) for n in (TP, 1))
    assert tp2.llm_kwargs()["compilation_config"] == {"pass_config": {"fuse_allreduce_rms": False}}
    assert "compilation_config" not in tp1.llm_kwargs()
    names = {c["name"] for c in changed_settings(tp2)} - {c["name"] for c in changed_settings(tp1)}
    assert names == {"pass_config.fuse_allreduce_rms"}


@pytest.mark.matrix(gpu=dict(block_size=(16, 32)))
def test_tp_block_counts(benchmark, metrics, target, block_size, start_engine, sizes, load_format, model_dir):
    """A fixed KV budget per GPU: at TP 2 each GPU holds half the KV heads, so the same bytes hold
    twice the tokens of TP 1 (the arithmetic the TP 1 pool follows on one GPU)."""
    shape = load_shape(model_dir)
    settings = block_pool_settings(model_dir, shape, sizes, block_size, load_format=load_format, tp=TP)
    engine = benchmark.pedantic(start_engine, args=(settings,), rounds=1, iterations=1)  # the start is what is timed
    blocks = engine.num_gpu_blocks
    bpt = shape.kv_bytes_per_token(TP)
    tp1_blocks = kv.pool_blocks(settings.kv_cache_bytes, block_size, shape.kv_bytes_per_token(1))
    metrics.param(block_size=block_size, model=shape.name, tp=TP, kv_budget_bytes_per_gpu=settings.kv_cache_bytes)
    metrics.exact("num_gpu_blocks", blocks, "blocks")
    metrics.exact("kv_cache_bytes_per_gpu", engine.kv_cache_bytes, "bytes")
    metrics.exact("tp1_blocks_same_budget", tp1_blocks, "blocks")
    metrics.exact("max_users_at_max_len", blocks * block_size // sizes.max_model_len, "requests")
    assert bpt * TP == shape.kv_bytes_per_token()          # the KV heads split evenly over the ranks
    assert blocks == expected_blocks(shape, settings)
    assert_pool_bounds(blocks, block_size, bpt, settings.kv_cache_bytes)
    assert blocks in (2 * tp1_blocks, 2 * tp1_blocks + 1)  # twice the tokens: floor(2x) is 2 floor(x) or one more


def test_tp_scaling(benchmark, metrics, target, start_engine, sizes, load_format, model_dir):
    """Llama-3.1-8B on the variable-length workload at TP 1, then TP 2, in one test (warm-up 1,
    rounds per tier): TP 2 must be faster; its efficiency TP2 / (2 x TP1) is gated."""
    shape = load_shape(model_dir)
    wl = tiers.variable_workload(sizes)
    tp1 = start_engine(serving_settings(model_dir, shape, sizes, load_format, tp=1))
    for _ in range(2):  # TP 1 outside pytest-benchmark's rounds (one fixture, one timed call)
        tp1.timed_generate(wl)
    tp1_seconds = [tp1.timed_generate(wl)[2] for _ in range(sizes.timing_rounds)]
    tp2 = start_engine(serving_settings(model_dir, shape, sizes, load_format, tp=TP))  # the pool stops TP 1
    seconds, out_tokens, peaks = measure(benchmark, tp2, wl, sizes.timing_rounds)
    metrics.param(tp=TP, model=shape.name, requests=len(wl), settings_changed=changed_settings(tp2.settings))
    tp1_tok_s = metrics.rate("tp1_output_tok_per_s", out_tokens, tp1_seconds, "tok/s", floor=tol.GPU_RATE)
    tp2_tok_s = metrics.rate("tp2_output_tok_per_s", out_tokens, seconds, "tok/s", floor=tol.GPU_RATE)
    spread = metrics.metrics["tp1_output_tok_per_s"].spread + metrics.metrics["tp2_output_tok_per_s"].spread
    metrics.metric("scaling_efficiency_pct", 100 * tp2_tok_s / (TP * tp1_tok_s), "%", "higher", spread=spread,
                   floor=tol.GPU_RATE)
    for i, peak in enumerate(peaks):
        metrics.metric(f"nvml_peak_gib_gpu{i}", peak, "GiB", "lower")
    assert tp2_tok_s > tp1_tok_s, f"TP {TP} ({tp2_tok_s:.0f} tok/s) is not faster than TP 1 ({tp1_tok_s:.0f})"


def test_llama70b_tp2(benchmark, metrics, target, start_engine, sizes, load_format):
    """Llama-3.1-70B architecture (dummy weights) at TP 2: throughput, blocks, peak memory per GPU."""
    shape = load_shape("llama-3.1-70b")
    engine = start_engine(serving_settings(resolve_model_dir("llama-3.1-70b"), shape, sizes, load_format, tp=TP))
    seconds, out_tokens, peaks = measure(benchmark, engine, tiers.variable_workload(sizes), sizes.timing_rounds)
    blocks = engine.num_gpu_blocks
    block_size = engine.effective()["block_size"]  # the settings leave it to vLLM's default on the device
    metrics.param(tp=TP, model=shape.name, requests=sizes.throughput_requests, block_size=block_size,
                  settings_changed=changed_settings(engine.settings))
    metrics.rate("output_tok_per_s", out_tokens, seconds, "tok/s", floor=tol.GPU_RATE)
    metrics.metric("num_gpu_blocks", blocks, "blocks", "higher")  # sized from free memory
    for i, peak in enumerate(peaks):
        metrics.metric(f"nvml_peak_gib_gpu{i}", peak, "GiB", "lower")
    # vLLM's KV tensors hold whole blocks of this model's per-GPU share of the heads...
    assert_pool_bounds(blocks, block_size, shape.kv_bytes_per_token(TP), engine.kv_cache_bytes)
    # ...and the count, which vLLM derives from free memory, lies between what the engine must hold (one
    # request of max_model_len: vLLM refuses to start below it) and what each GPU's NVML saw resident.
    pool_bytes = blocks * block_size * shape.kv_bytes_per_token(TP)
    assert blocks * block_size >= sizes.max_model_len, f"{blocks} blocks of {block_size} hold no full-length request"
    assert all(pool_bytes <= peak * GIB for peak in peaks), \
        f"a pool of {pool_bytes / GIB:.1f} GiB per GPU, but NVML saw at most {min(peaks):.1f} GiB in use"
