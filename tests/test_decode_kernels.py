"""Paged decode attention vs contiguous FlashAttention on Llama-3.1-8B's attention shape.

One layer, one query token per sequence: 32 query heads, 8 KV heads, head dim 128,
bf16. Every implementation runs once on a small case before any is timed (JIT,
autotune). Each case is checked against an fp32 reference, then timed as CUDA-graph
replays over rotated input sets (pagedbench.kernel_timing: 25 rounds of >= 1 ms,
after 30 ms of warm-up replays; median per call). pytest-benchmark's own rounds time
a graph replay with a host clock after a sync (pedantic, rounds=10, warm-up 2) so
--benchmark-compare sees it; the gated latency is the CUDA-event median. A case
whose rounds split into two clusters is reported unstable with both, not gated.
"""

import pytest

from pagedbench import kernels, kv
from pagedbench import tolerance as tol
from pagedbench.kernel_timing import GraphReplay, Timing, copies_for, l2_bytes, time_eager

pytestmark = [pytest.mark.kernels, pytest.mark.gpu_only]
BATCHES = (1, 8, 32, 128)
CONTEXTS = (512, 2048, 8192, 32768)
BLOCK_SIZES = (16, 32, 64)
ORDERS = ("in-order", "shuffled")
BF16_TOL = 2e-2   # relative L2 error of bf16 inputs/outputs against the fp32 reference


@pytest.fixture(scope="session")
def attn_shape(model_shape):
    return model_shape if model_shape.num_layers >= 8 else kv.load_shape("llama-3.1-8b")


@pytest.fixture(scope="module")
def _kernel_state():
    state = {}
    yield state
    state.clear()  # hand the inputs' memory back before other modules start engines
    import torch
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


@pytest.fixture
def kernel_session(target, _kernel_state, engine_pool, attn_shape):
    """Memory to ourselves (no engine resident), the copy bandwidth, and a cache of inputs.

    Function-scoped over a session dict so a case for another device skips before CUDA is touched.
    """
    if not _kernel_state:
        engine_pool.close()
        _kernel_state.update(copy_gbps=kernels.copy_bandwidth_gbps(), contiguous={}, inputs={}, l2=l2_bytes(),
                             unavailable=kernels.warm_up(attn_shape, {**kernels.PAGED, **kernels.CONTIGUOUS}))
    return _kernel_state


def inputs_for(state, case, shape):
    """(input sets to rotate over, fp32 reference of the first); one case's inputs resident at a time."""
    key = (case.batch, case.context, case.block_size, case.order)
    if key not in state["inputs"]:
        import torch
        state["inputs"].clear()
        torch.cuda.empty_cache()
        free, _ = torch.cuda.mem_get_info()
        copies = copies_for(case.kv_bytes(shape), state["l2"])
        if not kernels.fits(case, shape, free, copies):
            pytest.skip(f"B={case.batch} x {case.context} tokens needs more than the free {free / 2**30:.0f} GiB")
        try:
            inps = [kernels.make_inputs(case, shape, seed=i) for i in range(copies)]
            state["inputs"][key] = (inps, kernels.reference(inps[0]))
        except torch.OutOfMemoryError:
            state["inputs"].clear()
            torch.cuda.empty_cache()  # the session goes on with the memory back
            pytest.fail(f"out of memory building B={case.batch} x {case.context} tokens "
                        f"({2 * copies * case.kv_bytes(shape) / 2**30:.1f} GiB of K/V, contiguous + paged)",
                        pytrace=False)
    return state["inputs"][key]


def time_calls(benchmark, calls) -> Timing:
    """Graph replays where the calls can be captured, eager launches where they cannot."""
    import torch
    try:
        replay = GraphReplay(calls)
    except RuntimeError:
        torch.cuda.synchronize()
        timing = time_eager(calls)
        benchmark.pedantic(lambda: ([c() for c in calls], torch.cuda.synchronize()), rounds=10, warmup_rounds=2)
        return timing
    timing = replay.time()
    benchmark.pedantic(lambda: (replay.replay(), torch.cuda.synchronize()), rounds=10, iterations=1, warmup_rounds=2)
    return timing


def record_latency(metrics, timing: Timing, floor: float) -> None:
    metrics.param(timing=timing.method)
    metrics.metric("latency_us", timing.seconds * 1e6, "us", "lower", spread=timing.spread, floor=floor)
    if timing.modes:
        metrics.mark_unstable("latency_us", timing.modes[0] * 1e6, timing.modes[1] * 1e6)


def run_case(benchmark, metrics, state, builder, case, shape, impl):
    if metrics.attempt:  # a confirmation draws fresh tensors: a slow allocation must not confirm itself
        state["inputs"].clear()
    inps, ref = inputs_for(state, case, shape)
    if impl in state["unavailable"]:
        pytest.skip(state["unavailable"][impl])
    try:
        built = [builder(inp, case) for inp in inps]
        calls, label = [call for call, _ in built], built[0][1]
        out = calls[0]()
    except kernels.ImplUnavailable as exc:
        pytest.skip(str(exc))
    err = kernels.rel_error(out, ref)
    assert err < BF16_TOL, f"{impl}: relative error {err:.2e} against the fp32 reference"
    timing = time_calls(benchmark, calls)
    seconds, spread = timing.seconds, timing.spread
    gbps = case.kv_bytes(shape) / seconds / 1e9
    metrics.param(impl=impl, kernel=label, batch=case.batch, context=case.context, block_size=case.block_size,
                  order=case.order, rel_error=err, copy_gbps=state["copy_gbps"], input_sets=len(inps))
    floor = tol.kernel_floor(impl)
    record_latency(metrics, timing, floor)
    metrics.metric("kv_gbps", gbps, "GB/s", "higher", spread=spread, floor=floor)
    metrics.metric("pct_of_copy_bw", 100 * gbps / state["copy_gbps"], "%", "higher", spread=spread, floor=floor)
    if timing.modes:
        slow, fast = (case.kv_bytes(shape) / t / 1e9 for t in reversed(timing.modes))
        metrics.mark_unstable("kv_gbps", slow, fast)
        metrics.mark_unstable("pct_of_copy_bw", 100 * slow / state["copy_gbps"], 100 * fast / state["copy_gbps"])
    return seconds, gbps, spread


@pytest.mark.matrix(gpu=dict(impl=tuple(kernels.CONTIGUOUS), batch=BATCHES, context=CONTEXTS))
def test_contiguous_decode(benchmark, metrics, target, impl, batch, context, attn_shape, kernel_session):
    case = kernels.DecodeCase(batch, context, block_size=16, order="in-order")
    timing = run_case(benchmark, metrics, kernel_session, kernels.CONTIGUOUS[impl], case, attn_shape, impl)
    kernel_session["contiguous"].setdefault((batch, context), {})[impl] = timing


@pytest.mark.matrix(gpu=dict(impl=tuple(kernels.PAGED), batch=BATCHES, context=CONTEXTS, block_size=BLOCK_SIZES,
                             order=ORDERS))
def test_paged_decode(benchmark, metrics, target, impl, batch, context, block_size, order, attn_shape, kernel_session):
    case = kernels.DecodeCase(batch, context, block_size, order)
    seconds, gbps, spread = run_case(benchmark, metrics, kernel_session, kernels.PAGED[impl], case, attn_shape, impl)
    contiguous = kernel_session["contiguous"].get((batch, context), {})
    base_impl = "flash_attn" if "flash_attn" in contiguous else "fa3_contiguous"
    if base_impl in contiguous:
        base_seconds, _, base_spread = contiguous[base_impl]
        ratio = seconds / base_seconds
        overhead = 100 * (ratio - 1)  # may be negative: stored as the (positive) ratio, reported as %
        metrics.param(contiguous_baseline=base_impl, paged_overhead_pct=overhead)
        metrics.metric("paged_to_contiguous", ratio, "x", "lower", spread=spread + base_spread, floor=tol.KERNEL)
    # What the tutorial claims, at batch >= 32 and context >= 2048: paging costs at most 5 %, and
    # where one call reads >= 512 MiB of K/V the paged kernel runs at >= 80 % of the copy rate.
    # Smaller calls (B=32 x 2048 tokens = 256 MiB, ~110 us) are capped by ramp-up and tail for
    # contiguous kernels too: contiguous FA3 reached 79 % there on an H100.
    if impl == "fa3" and batch >= 32 and context >= 2048:
        if base_impl in contiguous:
            assert overhead <= 5.0, f"paged overhead {overhead:.1f} % against {base_impl} (> 5 %)"
        share = gbps / kernel_session["copy_gbps"]
        if case.kv_bytes(attn_shape) >= 512 << 20:
            assert share >= 0.80, f"FA paged decode at {share:.0%} of the measured copy bandwidth (< 80 %)"


PREFILL_QUERY = 512


@pytest.mark.matrix(gpu=dict(batch=(1, 8), context=(2048, 8192), block_size=(16, 64)))
def test_paged_prefill(benchmark, metrics, target, batch, context, block_size, attn_shape, kernel_session):
    """Chunked prefill on a paged cache: the last 512 tokens of each sequence attend causally
    to everything before them through the block table (vLLM's FlashAttention path)."""

    case = kernels.DecodeCase(batch, context, block_size, "shuffled")
    inps, _ = inputs_for(kernel_session, case, attn_shape)
    inp = inps[0]  # compute-bound: L2 residency of K/V does not set its time
    try:
        call, label = kernels.fa3_prefill(inp, case, PREFILL_QUERY)
        out = call()
    except kernels.ImplUnavailable as exc:
        pytest.skip(str(exc))
    ref = kernels.prefill_reference(inp, PREFILL_QUERY)
    err = kernels.rel_error(out, ref)
    assert err < BF16_TOL, f"prefill: relative error {err:.2e} against the fp32 reference"
    timing = time_calls(benchmark, [call])
    seconds, spread = timing.seconds, timing.spread
    # Causal over a 512-token tail: QK^T and PV, 2 flops per multiply-add, for each query row's keys.
    keys = sum(context - PREFILL_QUERY + i + 1 for i in range(PREFILL_QUERY))
    flops = 4 * batch * attn_shape.num_q_heads * attn_shape.head_dim * keys
    metrics.param(impl="fa3", kernel=label, batch=batch, context=context, block_size=block_size,
                  query_len=PREFILL_QUERY, rel_error=err)
    record_latency(metrics, timing, tol.KERNEL)
    metrics.metric("tflops", flops / seconds / 1e12, "TFLOP/s", "higher", spread=spread, floor=tol.KERNEL)
