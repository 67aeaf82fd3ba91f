"""Tensor parallelism through vLLM's distributed engine (multiprocessing executor over NCCL).

Ids carry the multi-GPU slug (`h200x2`), so `-k h200x2` selects them; on fewer GPUs they skip.
Each GPU stores its share of the KV heads: the per-GPU bytes per token at TP=n decide the pool.
"""

import pytest

from pagedbench import kv, workloads
from pagedbench import tolerance as tol
from pagedbench.meters import NvmlSampler, timed_rounds
from pagedbench.vllm_engine import block_pool_settings, expected_blocks, serving_settings

pytestmark = [pytest.mark.throughput, pytest.mark.tensor_parallel(2)]
TP = 2


def engine_for(start_engine, name, sizes, has_weights, tp):
    shape = kv.load_shape(name)
    fmt = "auto" if has_weights else "dummy"
    return start_engine(serving_settings(kv.resolve_model_dir(name), shape, sizes, fmt, tp=tp)), shape


@pytest.mark.matrix(gpu=dict(block_size=(16, 32)))
def test_tp_block_counts(benchmark, metrics, target, block_size, start_engine, sizes, has_weights, model_dir):
    shape = kv.load_shape(model_dir)
    settings = block_pool_settings(model_dir, shape, sizes, block_size, load_format="auto" if has_weights else "dummy",
                                   tp=TP)
    engine = start_engine(settings)
    blocks = benchmark.pedantic(lambda: engine.num_gpu_blocks, rounds=1, iterations=1)
    bpt = shape.kv_bytes_per_token(TP)
    metrics.param(block_size=block_size, model=shape.name, tp=TP, kv_budget_bytes_per_gpu=settings.kv_cache_bytes)
    metrics.exact("num_gpu_blocks", blocks, "blocks")
    metrics.exact("kv_cache_bytes_per_gpu", engine.kv_cache_bytes, "bytes")
    assert bpt * TP == shape.kv_bytes_per_token()          # the KV heads split evenly over the ranks
    assert blocks == expected_blocks(shape, settings) == settings.kv_cache_bytes // (block_size * bpt)


@pytest.mark.matrix(gpu=dict(tp=(1, 2)))
def test_tp_scaling(benchmark, metrics, target, tp, start_engine, sizes, has_weights, model_dir, request):
    """Llama-3.1-8B on the variable-length workload at TP 1 and 2 (warm-up 1, rounds per plan)."""
    engine = start_engine(serving_settings(model_dir, kv.load_shape(model_dir), sizes,
                                           "auto" if has_weights else "dummy", tp=tp))
    lo, hi = sizes.throughput_io
    wl = workloads.uniform_io(sizes.throughput_requests, vocab_size=4096, lo=lo, hi=hi)

    rounds = timed_rounds(benchmark, lambda: engine.timed_generate(wl), sizes.timing_rounds)
    metrics.param(tp=tp, model=kv.load_shape(model_dir).name, requests=len(wl))
    tok_s = metrics.rate("output_tok_per_s", rounds[-1][1], [t for _, _, t in rounds], "tok/s", floor=tol.GPU_RATE)
    store = request.session.__dict__.setdefault("_tp_scaling", {})  # TP 1 runs first in this grid
    store[tp] = tok_s
    if tp == TP and 1 in store:
        metrics.metric("scaling_efficiency_pct", 100 * tok_s / (TP * store[1]), "%", "higher", floor=tol.GPU_RATE)


def test_llama70b_tp2(benchmark, metrics, target, start_engine, sizes, has_weights):
    """Llama-3.1-70B architecture (dummy weights) at TP 2: throughput, blocks, peak memory per GPU."""
    engine, shape = engine_for(start_engine, "llama-3.1-70b", sizes, has_weights, TP)
    lo, hi = sizes.throughput_io
    wl = workloads.uniform_io(sizes.throughput_requests, vocab_size=4096, lo=lo, hi=hi)

    with NvmlSampler() as nvml:
        rounds = timed_rounds(benchmark, lambda: engine.timed_generate(wl), sizes.timing_rounds)
    metrics.param(tp=TP, model=shape.name, requests=len(wl))
    metrics.rate("output_tok_per_s", rounds[-1][1], [t for _, _, t in rounds], "tok/s", floor=tol.GPU_RATE)
    metrics.exact("num_gpu_blocks", engine.num_gpu_blocks, "blocks")
    metrics.metric("nvml_peak_gib_gpu0", nvml.peak_gib, "GiB", "lower")
    blocks_bytes = engine.num_gpu_blocks * engine.settings.block_size * shape.kv_bytes_per_token(TP)
    assert blocks_bytes <= engine.kv_cache_bytes
