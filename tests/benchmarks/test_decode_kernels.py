"""Paged decode attention vs contiguous FlashAttention on Llama-3.1-8B's attention shape.

One layer, one query token per sequence: 32 query heads, 8 KV heads, head dim 128,
bf16. Every implementation runs once on a small case before any is timed (JIT,
autotune). Each case is checked against an fp32 reference, then timed as CUDA-graph
replays over rotated input sets (pagedbench.meters.kernel_timing: 25 rounds of >= 1 ms,
after 30 ms of warm-up replays; median per call). pytest-benchmark's own rounds time
a graph replay with a host clock after a sync (pedantic, rounds=10, warm-up 2) so
--benchmark-compare sees it; the gated latency is the CUDA-event median. A case
whose rounds split into two clusters is reported unstable with both, not gated.
The harness (inputs, reference check, timing, metrics) is pagedbench.kernels.harness.
"""

import dataclasses
from contextlib import contextmanager

import pytest

from pagedbench.errors import PagedBenchError
from pagedbench.kernels import implementations as kernels
from pagedbench.kernels.decode_inputs import DecodeCase
from pagedbench.kernels.harness import BF16_TOL, KernelSession, time_calls
from pagedbench.workloads.model import load_shape

pytestmark = [pytest.mark.kernels, pytest.mark.gpu_only]
BATCHES = (1, 8, 32, 128)
CONTEXTS = (512, 2048, 8192, 32768)
BLOCK_SIZES = (16, 32, 64)
ORDERS = ("in-order", "shuffled")
PREFILL_QUERY = 512
HOST_ROUNDS = dict(rounds=10, iterations=1, warmup_rounds=2)  # pytest-benchmark's rounds: a host clock after a sync


@pytest.fixture(scope="session")
def attn_shape(model_shape):
    return model_shape if model_shape.num_layers >= 8 else load_shape("llama-3.1-8b")


@pytest.fixture(scope="module")
def _kernel_state():
    state = KernelSession()
    yield state
    state.release()  # hand the inputs' memory back before other modules start engines


@pytest.fixture
def kernel_session(target, _kernel_state, engine_pool, attn_shape):
    """Memory to ourselves (no engine resident), the copy bandwidth, and a cache of inputs.

    Function-scoped over a module-wide session so a case for another device skips before CUDA is touched.
    """
    if not _kernel_state.started:
        engine_pool.close()
        _kernel_state.start(attn_shape)
    return _kernel_state


@contextmanager
def runnable():
    """A case this machine cannot run skips with the reason; running out of memory fails the case."""
    try:
        yield
    except kernels.ImplUnavailable as exc:
        pytest.skip(str(exc))
    except PagedBenchError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.mark.matrix(gpu=dict(impl=tuple(kernels.CONTIGUOUS), batch=BATCHES, context=CONTEXTS))
def test_contiguous_decode(benchmark, metrics, target, impl, batch, context, attn_shape, kernel_session, session_store):
    case = DecodeCase(batch, context, block_size=16, order="in-order")
    with runnable():
        built = kernel_session.build(impl, kernels.CONTIGUOUS[impl], case, fresh=metrics.attempt > 0)
    assert built.rel_error < BF16_TOL, f"{impl}: relative error {built.rel_error:.2e} against the fp32 reference"
    timing, one_pass = time_calls(built.calls)
    benchmark.pedantic(one_pass, **HOST_ROUNDS)
    session_store.put(test_contiguous_decode.__name__, (target.slug, batch, context, impl),
                      kernel_session.record(metrics, built, timing, one_pass))


@pytest.mark.matrix(gpu=dict(impl=tuple(kernels.PAGED), batch=BATCHES, context=CONTEXTS, block_size=BLOCK_SIZES,
                             order=ORDERS))
def test_paged_decode(benchmark, metrics, target, impl, batch, context, block_size, order, attn_shape, kernel_session,
                      session_store):
    case = DecodeCase(batch, context, block_size, order)
    with runnable():
        built = kernel_session.build(impl, kernels.PAGED[impl], case, fresh=metrics.attempt > 0)
    assert built.rel_error < BF16_TOL, f"{impl}: relative error {built.rel_error:.2e} against the fp32 reference"
    timing, one_pass = time_calls(built.calls)
    benchmark.pedantic(one_pass, **HOST_ROUNDS)
    seconds, gbps, spread = kernel_session.record(metrics, built, timing, one_pass)
    session_store.put(test_paged_decode.__name__, (target.slug, impl, batch, context, block_size, order),
                      (seconds, gbps, spread))
    contiguous = session_store.under(test_contiguous_decode.__name__, target.slug, batch, context)
    against = kernel_session.record_paged_overhead(metrics, case, seconds, spread, contiguous)
    # What the tutorial claims, at batch >= 32 and context >= 2048: paging costs at most 5 %, and
    # where one call reads >= 512 MiB of K/V the paged kernel runs at >= 80 % of the copy rate.
    # Smaller calls (B=32 x 2048 tokens = 256 MiB, ~110 us) are capped by ramp-up and tail for
    # contiguous kernels too: contiguous FA3 reached 79 % there on an H100.
    if impl == "fa3" and batch >= 32 and context >= 2048:
        if against:
            # 5 % beyond what the two timings' own noise can move the overhead by: a bound on the
            # kernels, not on the rounds.
            base_impl, overhead, noise = against
            assert overhead <= 5.0 + noise, \
                f"paged overhead {overhead:.1f} % against {base_impl} (> 5 % + {noise:.1f} points of timing noise)"
        share = gbps / kernel_session.copy_gbps
        if case.kv_bytes(attn_shape) >= 512 << 20:
            assert share >= 0.80, f"FA paged decode at {share:.0%} of the measured copy bandwidth (< 80 %)"


@pytest.mark.matrix(gpu=dict(impl=tuple(kernels.PAGED_FP8), batch=(32, 128), context=(2048, 8192)))
def test_paged_decode_fp8(benchmark, metrics, target, impl, batch, context, attn_shape, kernel_session):
    """The paged cache in fp8 (vLLM's kv_cache_dtype="fp8"), the query in bf16: half the bytes per step.

    Checked against fp32 attention over the fp8-rounded K/V (the kernel's own error, held to the bf16
    bound); the error against the unrounded K/V is recorded (what the fp8 cache costs). The speed-up
    over the same case in bf16 (block 16, shuffled, the same inputs, timed right after) is recorded and
    gated, not asserted: how much of the halved traffic a kernel turns into time is what this measures."""
    case = DecodeCase(batch, context, 16, "shuffled", kv_dtype="fp8")
    with runnable():
        built, fp8_cost = kernel_session.build_fp8(impl, case, fresh=metrics.attempt > 0)
    assert built.rel_error < BF16_TOL, \
        f"{impl} fp8: relative error {built.rel_error:.2e} against fp32 attention over the fp8 K/V"
    metrics.param(error_vs_unrounded_kv=fp8_cost)
    timing, one_pass = time_calls(built.calls)
    benchmark.pedantic(one_pass, **HOST_ROUNDS)
    kernel_session.record(metrics, built, timing, one_pass)
    # Timed here rather than taken from test_paged_decode: the run order puts these cases first, and a
    # -k selection may leave that case out (the first H200 run recorded no speed-up at all).
    model_dtype = kernel_session.build(impl, kernels.PAGED[impl], dataclasses.replace(case, kv_dtype="auto"))
    assert model_dtype.rel_error < BF16_TOL, f"{impl}: relative error {model_dtype.rel_error:.2e} in bf16"
    kernel_session.record_fp8_speedup(metrics, timing, time_calls(model_dtype.calls)[0])


@pytest.mark.matrix(gpu=dict(batch=(1, 8), context=(2048, 8192), block_size=(16, 64)))
def test_paged_prefill(benchmark, metrics, target, batch, context, block_size, attn_shape, kernel_session):
    """Chunked prefill on a paged cache: the last 512 tokens of each sequence attend causally
    to everything before them through the block table (vLLM's FlashAttention path)."""
    case = DecodeCase(batch, context, block_size, "shuffled")
    with runnable():
        built = kernel_session.build_prefill(case, PREFILL_QUERY)
    assert built.rel_error < BF16_TOL, f"prefill: relative error {built.rel_error:.2e} against the fp32 reference"
    timing, one_pass = time_calls(built.calls)
    benchmark.pedantic(one_pass, **HOST_ROUNDS)
    kernel_session.record_prefill(metrics, built, timing, PREFILL_QUERY, one_pass)
