"""Timing one kernel call so that the figure is the kernel's, and stable between runs.

A decode kernel of a few microseconds launched from Python is timed as its launch:
CUDA events around an eager call measure the host (Triton's launcher alone takes
tens of microseconds), which is why small Triton cases were bimodal between runs
(31 vs 68 us on one H100 model). Here the calls are captured once in a CUDA graph
and the graph is replayed, so back-to-back kernels leave no launch gaps. Inputs
small enough to stay in L2 are rotated over several copies (each call reads other
K/V than the one before it), so the figure is a read from HBM, as in a model
whose every layer has its own cache, and no L2 flush sits between the events.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

MAX_COPIES = 64
ROUNDS = 25              # timed rounds (each a batch of graph replays) per case
ROUND_MS = 1.0           # each round lasts at least this long
WARMUP_MS = 30.0         # replays before timing: clocks up, caches and TLBs in their steady state
CLUSTER_GAP = 0.05       # rounds split into two clusters more than 5 % apart ...
CLUSTER_SHARE = 0.2      # ... each holding at least a fifth of the rounds: unstable


@dataclass(frozen=True)
class Timing:
    seconds: float                          # median per call
    spread: float                           # (q80 - q20) / median over the rounds
    modes: tuple[float, float] | None       # seconds per call of the two clusters, when the rounds split
    method: str
    samples: tuple[float, ...]


def copies_for(kv_bytes: int, l2_bytes: int) -> int:
    """Input sets to rotate over so that each call's K/V was evicted from L2 since its last read:
    three L2's worth of other data between two reads of the same copy."""
    return max(1, min(MAX_COPIES, math.ceil(3 * l2_bytes / max(kv_bytes, 1))))


def l2_bytes() -> int:
    import torch
    return int(getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 << 20))


def clusters(samples: list[float], gap: float = CLUSTER_GAP, share: float = CLUSTER_SHARE):
    """(low, high) medians when the samples split at one gap into two sizeable groups, else None."""
    xs = sorted(samples)
    n = len(xs)
    if n < 5:
        return None
    i = max(range(n - 1), key=lambda j: xs[j + 1] / xs[j] if xs[j] > 0 else 0.0)
    if xs[i] <= 0 or xs[i + 1] / xs[i] - 1 <= gap or min(i + 1, n - i - 1) < share * n:
        return None
    return statistics.median(xs[:i + 1]), statistics.median(xs[i + 1:])


def summarize(samples: list[float], method: str) -> Timing:
    xs = sorted(samples)
    med = statistics.median(xs)
    q20, q80 = xs[int(0.2 * (len(xs) - 1))], xs[int(0.8 * (len(xs) - 1))]
    return Timing(med, (q80 - q20) / med if med else 0.0, clusters(samples), method, tuple(samples))


class GraphReplay:
    """The calls captured as one CUDA graph; `replay(n)` enqueues it n times."""

    def __init__(self, calls: list[Callable]):
        import torch
        self.torch, self.calls = torch, calls
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # first calls off the capture: JIT, autotune, lazy module loads
            for c in calls:
                c()
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            for c in calls:
                c()
        torch.cuda.synchronize()

    def replay(self, n: int = 1) -> None:
        for _ in range(n):
            self.graph.replay()

    def time(self, rounds: int = ROUNDS, round_ms: float = ROUND_MS, warmup_ms: float = WARMUP_MS) -> Timing:
        torch = self.torch
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        self.replay()
        end.record()
        end.synchronize()
        one_ms = max(start.elapsed_time(end), 1e-3)
        self.replay(math.ceil(warmup_ms / one_ms))
        reps = max(1, math.ceil(round_ms / one_ms))
        samples = []
        for _ in range(rounds):
            start.record()
            self.replay(reps)
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) / 1e3 / (reps * len(self.calls)))
        return summarize(samples, f"CUDA graph, {len(self.calls)} input set(s) rotated, {reps} replays/round")


def time_eager(calls: list[Callable], rounds: int = ROUNDS, round_ms: float = ROUND_MS) -> Timing:
    """Fallback for a call that cannot be captured: events around eager calls (launches included)."""
    import torch
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for c in calls:
        c()
    torch.cuda.synchronize()
    start.record()
    for c in calls:
        c()
    end.record()
    end.synchronize()
    reps = max(1, math.ceil(round_ms / max(start.elapsed_time(end), 1e-3)))
    samples = []
    for _ in range(rounds):
        start.record()
        for _ in range(reps):
            for c in calls:
                c()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) / 1e3 / (reps * len(calls)))
    return summarize(samples, f"eager launches (not capturable), {len(calls)} input set(s) rotated")
