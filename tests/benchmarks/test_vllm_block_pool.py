"""The tutorial's memory tables, measured on vLLM's own block pool.

The engine is stepped and its pool read after every step (blocks held between
steps). Block counts depend only on token counts and block size, so a measured
peak converts exactly into bytes for any model: LLaMA-7B fp16 (the tutorial's),
Llama-3.1-8B bf16, and the engine's own model are recorded.
"""

import re

import pytest

from pagedbench.engines.engine_settings import block_pool_settings, expected_blocks
from pagedbench.errors import BLOCK_SIZE_REFUSALS, StartError
from pagedbench.plugin import targets
from pagedbench.prediction import kv_arithmetic as kv
from pagedbench.prediction.simulator import SchedulerLimits, simulate
from pagedbench.workloads import requests as workloads
from pagedbench.workloads import tier_sizes as tiers
from pagedbench.workloads.model import GIB, load_shape

pytestmark = pytest.mark.blocks
BLOCK_SIZES = dict(cpu=dict(block_size=(32, 64, 128)), gpu=dict(block_size=(16, 32, 64)))
REPORTED_MODELS = ("llama-7b", "llama-3.1-8b")
HOPPER_REFUSED = 8  # block size no attention backend of vLLM takes on Hopper


@pytest.fixture
def pool_settings(model_dir, model_shape, sizes, load_format):
    return lambda block_size, prefix_caching=False: block_pool_settings(model_dir, model_shape, sizes, block_size,
                                                                        prefix_caching, load_format)


@pytest.fixture
def pool_engine(start_engine, pool_settings):
    def get(block_size, prefix_caching=False):
        settings = pool_settings(block_size, prefix_caching)
        return start_engine(settings), settings
    return get


def limits_of(engine, settings):
    return SchedulerLimits(engine.num_gpu_blocks, settings.block_size, settings.max_num_seqs,
                           settings.max_num_batched_tokens, settings.enable_prefix_caching)


# On Hopper the 8-token case is a fact checked each run: vLLM refuses it, for its block size.
@pytest.mark.matrix(cpu=dict(block_size=(32, 64, 128)), gpu=dict(block_size=(HOPPER_REFUSED, 16, 32, 64)))
def test_block_counts(benchmark, metrics, target, block_size, engine_pool, pool_settings, pool_engine, model_shape):
    if target.slug in targets.HOPPER and block_size == HOPPER_REFUSED:
        refusal = "|".join(map(re.escape, BLOCK_SIZE_REFUSALS))
        with pytest.raises(StartError, match=refusal) as refused:  # a round that raised is not stored
            benchmark.pedantic(engine_pool.get, args=(pool_settings(block_size),), rounds=1, iterations=1)
        assert refused.value.unsupported, f"vLLM's refusal is no longer read as one: {refused.value}"
        return
    # What is timed is the engine start that sizes the pool: a fresh one, not the resident engine handed back.
    engine_pool.close()
    engine, settings = benchmark.pedantic(pool_engine, args=(block_size,), rounds=1, iterations=1)
    blocks = engine.num_gpu_blocks
    bpt = model_shape.kv_bytes_per_token()
    metrics.param(block_size=block_size, model=model_shape.name, kv_budget_bytes=settings.kv_cache_bytes)
    metrics.exact("num_gpu_blocks", blocks, "blocks")
    metrics.exact("kv_cache_bytes", engine.kv_cache_bytes, "bytes")
    metrics.exact("predicted_blocks", expected_blocks(model_shape, settings), "blocks")
    assert blocks == settings.kv_cache_bytes // (block_size * bpt) == expected_blocks(model_shape, settings)
    assert blocks * block_size * bpt <= engine.kv_cache_bytes < (blocks + 1) * block_size * bpt


@pytest.mark.matrix(**BLOCK_SIZES)
def test_memory_waste(benchmark, metrics, target, block_size, pool_engine, model_shape, sizes):
    """Tutorial benchmark 1: 100 variable-length users admitted at once (rounds=1: counts are exact)."""
    engine, settings = pool_engine(block_size)
    wl = workloads.seed_mix(vocab_size=4096, max_seq_len=sizes.max_model_len)
    run = benchmark.pedantic(engine.run_stepped, args=(wl,), rounds=1, iterations=1)
    peak = run.peak_step
    predicted = simulate(wl, limits_of(engine, settings))
    metrics.param(block_size=block_size, model=model_shape.name, n_requests=len(wl), max_seq_len=sizes.max_model_len)
    metrics.exact("peak_blocks", peak.blocks_used, "blocks")
    metrics.exact("tokens_held", peak.tokens_held, "tokens")
    metrics.exact("predicted_peak_blocks", predicted.peak_blocks, "blocks")
    metrics.derived("paged_waste_pct", run.fragmentation_pct, "%", "lower")
    contiguous_tokens = len(wl) * sizes.max_model_len
    metrics.derived("contiguous_waste_pct", 100 * (1 - peak.tokens_held / contiguous_tokens), "%", "lower")
    for name in (*REPORTED_MODELS, model_shape.name):
        bpt = load_shape(name).kv_bytes_per_token() if name != model_shape.name else model_shape.kv_bytes_per_token()
        benchmark.extra_info[f"{name}.paged_allocated_gib"] = peak.blocks_used * block_size * bpt / GIB
        benchmark.extra_info[f"{name}.contiguous_allocated_gib"] = contiguous_tokens * bpt / GIB
        benchmark.extra_info[f"{name}.used_gib"] = peak.tokens_held * bpt / GIB

    assert peak.running == len(wl), "every user must be admitted at once for the table to hold"
    assert peak.tokens_held == sum(wl.prompt_lens)
    assert peak.blocks_used == sum(kv.blocks_for(n, block_size) for n in wl.prompt_lens)
    assert peak.blocks_used == predicted.peak_blocks  # the simulator predicts vLLM exactly here
    assert 0 <= run.fragmentation_tokens < len(wl) * block_size  # under one block per user


@pytest.mark.matrix(**BLOCK_SIZES)
def test_concurrent_users(benchmark, metrics, target, block_size, pool_engine, model_shape, sizes):
    """Tutorial benchmark 2: the budget holds N users pre-allocated at max_model_len; how many run paged?"""
    engine, settings = pool_engine(block_size)
    wl = workloads.long_tail(sizes.concurrency_requests, vocab_size=4096, max_seq_len=sizes.max_model_len)
    run = benchmark.pedantic(engine.run_stepped, args=(wl,), rounds=1, iterations=1)
    bpt = model_shape.kv_bytes_per_token()
    contiguous_users = kv.max_users_contiguous(settings.kv_cache_bytes, sizes.max_model_len, bpt)
    avg = round(wl.total_tokens / len(wl))
    # vLLM holds block 0 back as its null block: requests share the budget less one block.
    predicted_users = kv.max_users_paged(settings.kv_cache_bytes - block_size * bpt, avg, block_size, bpt)
    sim = simulate(wl, limits_of(engine, settings))
    metrics.param(block_size=block_size, budget_tokens=sizes.kv_budget_tokens, max_seq_len=sizes.max_model_len,
                  avg_len=avg, n_offered=len(wl), model=model_shape.name)
    metrics.exact("peak_running", run.peak_running, "requests")
    metrics.exact("preemptions", run.preemptions, "preemptions")
    metrics.exact("contiguous_users", contiguous_users, "requests")
    metrics.exact("predicted_users", predicted_users, "requests")
    metrics.exact("sim_peak_running", sim.peak_running, "requests")
    # Measured waste of the variable-length run: blocks vLLM held at its peak against what
    # pre-allocating max_model_len for the same concurrent requests would have reserved.
    metrics.exact("peak_blocks", run.peak_blocks, "blocks")
    metrics.exact("sim_peak_blocks", sim.peak_blocks, "blocks")
    contiguous_need = run.peak_running * sizes.max_model_len
    metrics.derived("paged_vs_contiguous_pct", 100 * run.peak_blocks * block_size / contiguous_need, "%", "lower")
    benchmark.extra_info.update(sim_preemptions=sim.preemptions, measured_over_contiguous=run.peak_running / contiguous_users)
    # Internal fragmentation of this long-tailed mix beside the rule of thumb: half a block per request.
    peak = run.peak_step
    metrics.derived("fragmentation_pct", run.fragmentation_pct, "%", "lower")
    metrics.param(rule_of_thumb_fragmentation_pct=100 * peak.running * block_size / 2 / (peak.blocks_used * block_size))

    assert contiguous_users == tiers.CONTIGUOUS_USERS
    assert run.peak_running > 2 * contiguous_users, "paging must admit well over the pre-allocated count"
    assert max(s.blocks_used for s in run.steps) <= engine.num_gpu_blocks - 1
    assert run.peak_blocks * block_size < contiguous_need  # the same users, pre-allocated, would not fit
    # The simulator replays vLLM's scheduling policy; it must land within 10 % of the measured peak.
    assert sim.peak_running == pytest.approx(run.peak_running, rel=0.10)


@pytest.mark.matrix(cpu=dict(block_size=(32, 64, 128), prefix_caching=(False, True)),
                    gpu=dict(block_size=(16, 32, 64), prefix_caching=(False, True)))
def test_prefix_sharing(benchmark, metrics, target, block_size, prefix_caching, pool_engine, model_shape, sizes):
    """Tutorial benchmark 3: 100 users, one 500-token system prompt + 100 unique tokens each."""
    engine, settings = pool_engine(block_size, prefix_caching)
    n_users, shared_len, unique_len = 100, 500, 100
    wl = workloads.shared_prefix(n_users, shared_len, unique_len, vocab_size=4096, max_seq_len=sizes.max_model_len)

    def run_fresh():
        if prefix_caching:
            engine.reset_prefix_cache()  # a repeat of the workload must not hit the last round's blocks
        return engine.run_stepped(wl)

    run = benchmark.pedantic(run_fresh, rounds=1, iterations=1)
    pred = kv.prefix_sharing(n_users, shared_len, unique_len, block_size)
    predicted_blocks = pred.blocks_shared if prefix_caching else pred.blocks_unshared
    metrics.param(block_size=block_size, prefix_caching=prefix_caching, n_users=n_users, shared_len=shared_len,
                  unique_len=unique_len, model=model_shape.name)
    metrics.exact("peak_blocks", run.peak_blocks, "blocks")
    metrics.exact("predicted_blocks", predicted_blocks, "blocks")
    metrics.exact("prefix_hits", run.prefix_hits, "tokens")
    metrics.exact("prefix_queries", run.prefix_queries, "tokens")
    metrics.derived("hit_rate_pct", 100 * run.hit_rate, "%", "higher")

    assert run.peak_running == n_users
    assert run.peak_blocks == predicted_blocks
    assert run.prefix_hits == (kv.prefix_hit_tokens(n_users - 1, shared_len, unique_len, block_size) if prefix_caching else 0)
