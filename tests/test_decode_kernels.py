"""Paged decode attention vs contiguous FlashAttention on Llama-3.1-8B's attention shape.

One layer, one query token per sequence: 32 query heads, 8 KV heads, head dim 128,
bf16. Each case is first checked against an fp32 reference, then timed with
triton.testing.do_bench (CUDA events, L2 flushed between calls, warm-up 25 ms,
50 ms of reps, median). pytest-benchmark's own rounds time the same call with
a host clock after a sync (pedantic, rounds=10, warm-up 2) so --benchmark-compare sees it;
the gated latency is the CUDA-event median.
"""

import pytest

from pagedbench import kernels, kv

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
def kernel_session(target, _kernel_state, engine_pool):
    """Memory to ourselves (no engine resident), the copy bandwidth, and a cache of inputs.

    Function-scoped over a session dict so a case for another device skips before CUDA is touched.
    """
    if not _kernel_state:
        engine_pool.close()
        _kernel_state.update(copy_gbps=kernels.copy_bandwidth_gbps(), contiguous={}, inputs={})
    return _kernel_state


def inputs_for(state, case, shape):
    key = (case.batch, case.context, case.block_size, case.order)
    if key not in state["inputs"]:
        import torch
        state["inputs"].clear()  # one shape resident at a time
        torch.cuda.empty_cache()
        free, _ = torch.cuda.mem_get_info()
        if not kernels.fits(case, shape, free):
            pytest.skip(f"B={case.batch} x {case.context} tokens needs more than the free {free / 2**30:.0f} GiB")
        try:
            inp = kernels.make_inputs(case, shape)
            state["inputs"][key] = (inp, kernels.reference(inp))
        except torch.OutOfMemoryError:
            state["inputs"].clear()
            torch.cuda.empty_cache()  # the session goes on with the memory back
            pytest.fail(f"out of memory building B={case.batch} x {case.context} tokens "
                        f"({2 * case.kv_bytes(shape) / 2**30:.1f} GiB of K/V, contiguous + paged)", pytrace=False)
    return state["inputs"][key]


# PyTorch's SDPA is the framework baseline, not a kernel under test: its run-to-run swing at
# long contexts (12 % on an H200) is wider than its spread within one run.
FLOOR = {"torch_sdpa": 0.15}


def run_case(benchmark, metrics, state, builder, case, shape, impl):
    inp, ref = inputs_for(state, case, shape)
    try:
        call, label = builder(inp, case)
        out = call()
    except kernels.ImplUnavailable as exc:
        pytest.skip(str(exc))
    err = kernels.rel_error(out, ref)
    assert err < BF16_TOL, f"{impl}: relative error {err:.2e} against the fp32 reference"
    seconds, spread = kernels.do_bench(call)
    benchmark.pedantic(lambda: (call(), __import__("torch").cuda.synchronize()), rounds=10, iterations=1,
                       warmup_rounds=2)
    gbps = case.kv_bytes(shape) / seconds / 1e9
    metrics.param(impl=impl, kernel=label, batch=case.batch, context=case.context, block_size=case.block_size,
                  order=case.order, rel_error=err, copy_gbps=state["copy_gbps"])
    floor = FLOOR.get(impl, 0.03)
    metrics.metric("latency_us", seconds * 1e6, "us", "lower", spread=spread, floor=floor)
    metrics.metric("kv_gbps", gbps, "GB/s", "higher", spread=spread, floor=floor)
    metrics.metric("pct_of_copy_bw", 100 * gbps / state["copy_gbps"], "%", "higher", spread=spread, floor=floor)
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
        metrics.metric("paged_to_contiguous", ratio, "x", "lower", spread=spread + base_spread, floor=0.03)
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
    import torch

    case = kernels.DecodeCase(batch, context, block_size, "shuffled")
    inp, _ = inputs_for(kernel_session, case, attn_shape)
    try:
        call, label = kernels.fa3_prefill(inp, case, PREFILL_QUERY)
        out = call()
    except kernels.ImplUnavailable as exc:
        pytest.skip(str(exc))
    ref = kernels.prefill_reference(inp, PREFILL_QUERY)
    err = kernels.rel_error(out, ref)
    assert err < BF16_TOL, f"prefill: relative error {err:.2e} against the fp32 reference"
    seconds, spread = kernels.do_bench(call)
    benchmark.pedantic(lambda: (call(), torch.cuda.synchronize()), rounds=10, iterations=1, warmup_rounds=2)
    # Causal over a 512-token tail: QK^T and PV, 2 flops per multiply-add, for each query row's keys.
    keys = sum(context - PREFILL_QUERY + i + 1 for i in range(PREFILL_QUERY))
    flops = 4 * batch * attn_shape.num_q_heads * attn_shape.head_dim * keys
    metrics.param(impl="fa3", kernel=label, batch=batch, context=context, block_size=block_size,
                  query_len=PREFILL_QUERY, rel_error=err)
    metrics.metric("latency_us", seconds * 1e6, "us", "lower", spread=spread, floor=0.03)
    metrics.metric("tflops", flops / seconds / 1e12, "TFLOP/s", "higher", spread=spread, floor=0.03)
