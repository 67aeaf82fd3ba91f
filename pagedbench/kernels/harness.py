"""The kernel benchmark's harness: one case's inputs, correctness check, timing and metrics.

tests/benchmarks/test_decode_kernels.py holds the grid, the assertions and the benchmark call;
what a case does between its parameters and its figures lives here, as FlashInfer
keeps attention_flops and its benchmark helpers in flashinfer/testing/utils.py.
A case that cannot run on this machine raises kernels.ImplUnavailable (the test
skips with the reason); one that runs out of device memory raises PagedBenchError
(the test fails).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from pagedbench.errors import PagedBenchError
from pagedbench.gate import tolerance as tol
from pagedbench.kernels import implementations as kernels
from pagedbench.kernels.copy_bandwidth import copy_bandwidth_gbps
from pagedbench.kernels.decode_inputs import DecodeCase, fits, make_inputs, with_fp8_cache
from pagedbench.kernels.implementations import ImplUnavailable
from pagedbench.kernels.references import fp8_reference, prefill_reference, reference, rel_error
from pagedbench.meters.energy import kernel_energy
from pagedbench.meters.kernel_timing import GraphReplay, Timing, copies_for, l2_bytes, time_eager
from pagedbench.workloads.model import ModelShape

BF16_TOL = 2e-2   # relative L2 error of bf16 inputs/outputs against the fp32 reference


class CaseTooLarge(ImplUnavailable):
    """The case's input sets need more device memory than is free."""


@dataclass
class Built:
    """One implementation ready to time on one case: its calls (one per input set), checked."""

    impl: str
    case: DecodeCase
    calls: list[Callable]
    label: str
    rel_error: float      # of the first input set's output against the fp32 reference
    input_sets: int


@dataclass
class KernelSession:
    """Memory to ourselves, the copy bandwidth and the inputs of one case at a time. Started by the
    first case that runs here. (The contiguous timings the paged cases compare with go through the
    session store: they are figures, not device state.)"""

    started: bool = False
    shape: ModelShape | None = None
    copy_gbps: float = 0.0
    l2: int = 0
    unavailable: dict[str, str] = field(default_factory=dict)       # impl -> why it cannot run here
    broken: dict[str, str] = field(default_factory=dict)            # impl -> the error its warm-up raised
    inputs: dict[tuple, tuple[list, object]] = field(default_factory=dict)

    def start(self, shape: ModelShape) -> None:
        self.shape = shape
        self.copy_gbps = copy_bandwidth_gbps()
        self.l2 = l2_bytes()
        self.unavailable, self.broken = kernels.warm_up(shape, {**kernels.PAGED, **kernels.CONTIGUOUS},
                                                        kernels.PAGED_FP8)
        self.started = True

    def release(self) -> None:
        """Hand the inputs' memory back (before other modules start engines)."""
        self.inputs.clear()
        self.started = False
        import torch
        if torch.cuda.is_initialized():
            torch.cuda.empty_cache()

    def inputs_for(self, case: DecodeCase) -> tuple[list, object]:
        """(input sets to rotate over, fp32 reference of the first); one case's inputs resident at a time."""
        key = (case.batch, case.context, case.block_size, case.order)
        if key not in self.inputs:
            import torch
            self.inputs.clear()
            torch.cuda.empty_cache()
            free, _ = torch.cuda.mem_get_info()
            copies = copies_for(case.kv_bytes(self.shape), self.l2)
            if not fits(case, self.shape, free, copies):
                raise CaseTooLarge(f"B={case.batch} x {case.context} tokens needs more than the free "
                                   f"{free / 2**30:.0f} GiB")
            try:
                inps = [make_inputs(case, self.shape, seed=i) for i in range(copies)]
                self.inputs[key] = (inps, reference(inps[0]))
            except torch.OutOfMemoryError:
                self.inputs.clear()
                torch.cuda.empty_cache()  # the session goes on with the memory back
                raise PagedBenchError(f"out of memory building B={case.batch} x {case.context} tokens "
                                      f"({2 * copies * case.kv_bytes(self.shape) / 2**30:.1f} GiB of K/V, "
                                      "contiguous + paged)") from None
        return self.inputs[key]

    def _runnable(self, name: str) -> None:
        if name in self.unavailable:
            raise ImplUnavailable(self.unavailable[name])
        if name in self.broken:
            raise PagedBenchError(f"{name} failed its warm-up: {self.broken[name]}")

    def _inputs(self, case: DecodeCase, fresh: bool) -> tuple[list, object]:
        if fresh:  # a confirmation draws fresh tensors: a slow allocation must not confirm itself
            self.inputs.clear()
        return self.inputs_for(case)

    @staticmethod
    def _calls(impl: str, builder: Callable, case: DecodeCase, inps: list) -> tuple[Built, object]:
        """(the implementation on every input set, with no error yet; the first set's output)."""
        built = [builder(inp, case) for inp in inps]
        calls = [call for call, _ in built]
        return Built(impl, case, calls, built[0][1], 0.0, len(inps)), calls[0]()

    def build(self, impl: str, builder: Callable, case: DecodeCase, fresh: bool = False) -> Built:
        """The implementation on every input set of the case, its first output checked against fp32."""
        inps, ref = self._inputs(case, fresh)
        self._runnable(impl)
        built, out = self._calls(impl, builder, case, inps)
        return dataclasses.replace(built, rel_error=rel_error(out, ref))

    def build_fp8(self, impl: str, case: DecodeCase, fresh: bool = False) -> tuple[Built, float]:
        """The implementation on fp8 copies of the case's paged K/V, checked against fp32 attention over
        the fp8-rounded K/V; also returns its error against the unrounded K/V (what fp8 costs)."""
        inps, ref = self._inputs(dataclasses.replace(case, kv_dtype="auto"), fresh)
        self._runnable(kernels.fp8_name(impl))
        built, out = self._calls(impl, kernels.PAGED_FP8[impl], case, [with_fp8_cache(i) for i in inps])
        error = rel_error(out, fp8_reference(inps[0]))
        return dataclasses.replace(built, rel_error=error), rel_error(out, ref)

    def build_prefill(self, case: DecodeCase, query_len: int) -> Built:
        """FA3's chunked prefill on the case's first input set: compute-bound, so L2 residency of
        K/V does not set its time and no sets are rotated."""
        inp = self.inputs_for(case)[0][0]
        call, label = kernels.fa3_prefill(inp, case, query_len)
        out = call()
        return Built("fa3", case, [call], label, rel_error(out, prefill_reference(inp, query_len)), 1)

    def record(self, metrics, built: Built, timing: Timing, one_pass=None) -> tuple[float, float, float]:
        """Latency, K/V bandwidth and its share of the copy bandwidth, and with one_pass (time_calls') the
        joules per call; (seconds, GB/s, spread)."""
        case, seconds, spread = built.case, timing.seconds, timing.spread
        gbps = case.kv_bytes(self.shape) / seconds / 1e9
        metrics.param(impl=built.impl, kernel=built.label, batch=case.batch, context=case.context,
                      block_size=case.block_size, order=case.order, kv_dtype=case.kv_dtype, rel_error=built.rel_error,
                      copy_gbps=self.copy_gbps, input_sets=built.input_sets)
        floor = tol.kernel_floor(built.impl)
        record_latency(metrics, timing, floor, one_pass, len(built.calls))
        metrics.metric("kv_gbps", gbps, "GB/s", "higher", spread=spread, floor=floor)
        metrics.metric("pct_of_copy_bw", 100 * gbps / self.copy_gbps, "%", "higher", spread=spread, floor=floor)
        if timing.modes:
            slow, fast = (case.kv_bytes(self.shape) / t / 1e9 for t in reversed(timing.modes))
            metrics.mark_unstable("kv_gbps", slow, fast)
            metrics.mark_unstable("pct_of_copy_bw", 100 * slow / self.copy_gbps, 100 * fast / self.copy_gbps)
        return seconds, gbps, spread

    def record_paged_overhead(self, metrics, case: DecodeCase, seconds: float, spread: float,
                              contiguous: dict[str, tuple[float, float, float]]) -> tuple[str, float, float] | None:
        """A paged case against contiguous FlashAttention at its batch and context, when that ran earlier
        in the session (contiguous: impl -> what `record` returned): (the contiguous implementation,
        overhead in %, the noise of that overhead in points: K x the two sides' spreads within the run).
        When it did not, the test says so rather than dropping the figure."""
        base_impl = "flash_attn" if "flash_attn" in contiguous else "fa3_contiguous"
        if base_impl not in contiguous:
            metrics.not_measured("paged_to_contiguous", f"no contiguous case at batch {case.batch}, context "
                                 f"{case.context} ran earlier in this session: the paging overhead (and its 5 % "
                                 "bound on FA3) was not checked")
            return None
        base_seconds, _, base_spread = contiguous[base_impl]
        ratio = seconds / base_seconds
        overhead = 100 * (ratio - 1)  # may be negative: stored as the (positive) ratio, reported as %
        metrics.param(contiguous_baseline=base_impl, paged_overhead_pct=overhead)
        metrics.ratio("paged_to_contiguous", ratio, "x", "lower", spread=spread + base_spread, floor=tol.KERNEL,
                      sides=f"latency_us here and in {base_impl}'s test_contiguous_decode case")
        return base_impl, overhead, 100 * tol.K * (spread + base_spread)

    def record_fp8_speedup(self, metrics, fp8: Timing, model_dtype: Timing) -> float:
        """The model-dtype case's latency over the fp8 one, both timed on the same inputs; fp8 reads half
        the bytes."""
        metrics.param(model_dtype_latency_us=model_dtype.seconds * 1e6)
        speedup = model_dtype.seconds / fp8.seconds
        metrics.ratio("fp8_speedup", speedup, "x", "higher", spread=fp8.spread + model_dtype.spread, floor=tol.KERNEL,
                      sides="latency_us here and the model-dtype case's latency_us in test_paged_decode")
        return speedup

    def record_prefill(self, metrics, built: Built, timing: Timing, query_len: int, one_pass=None) -> None:
        case = built.case
        metrics.param(impl=built.impl, kernel=built.label, batch=case.batch, context=case.context,
                      block_size=case.block_size, query_len=query_len, rel_error=built.rel_error)
        record_latency(metrics, timing, tol.KERNEL, one_pass, len(built.calls))
        flops = prefill_flops(case.batch, case.context, query_len, self.shape)
        metrics.metric("tflops", flops / timing.seconds / 1e12, "TFLOP/s", "higher", spread=timing.spread,
                       floor=tol.KERNEL)


def prefill_flops(batch: int, context: int, query_len: int, shape: ModelShape) -> int:
    """Causal over a query_len-token tail: QK^T and PV, 2 flops per multiply-add, for each query row's keys."""
    keys = sum(context - query_len + i + 1 for i in range(query_len))
    return 4 * batch * shape.num_q_heads * shape.head_dim * keys


def time_calls(calls: list[Callable]) -> tuple[Timing, Callable[[], object]]:
    """(the kernel's timing, one host-clocked pass for pytest-benchmark's rounds): graph replays
    where the calls can be captured, eager launches where they cannot."""
    import torch
    try:
        replay = GraphReplay(calls)
    except RuntimeError:
        torch.cuda.synchronize()
        return time_eager(calls), lambda: ([c() for c in calls], torch.cuda.synchronize())
    return replay.time(), lambda: (replay.replay(), torch.cuda.synchronize())


def record_latency(metrics, timing: Timing, floor: float, one_pass=None, calls: int = 1) -> None:
    """Latency per call; with one_pass (a synchronized pass of `calls` calls) also joules per call,
    measured after the timed rounds (meters/energy.kernel_energy)."""
    metrics.param(timing=timing.method)
    if one_pass is not None:
        kernel_energy(metrics, one_pass, calls, timing.seconds, max(tol.ENERGY, floor))
    metrics.metric("latency_us", timing.seconds * 1e6, "us", "lower", spread=timing.spread, floor=floor)
    if timing.modes:
        metrics.mark_unstable("latency_us", timing.modes[0] * 1e6, timing.modes[1] * 1e6)
