"""What the serving tier runs on each kind of device: request mixes, rates, sizes, seeds.

The GPU mixes follow vLLM's serving benchmarks (random dataset; vLLM's perf CI runs QPS
1/4/16/inf); the CPU tier is the same set scaled to a 2-layer model on 2 cores. The number
of prompts per rate is what fills `seconds_per_rate` at that rate, within [min, max], so a
low rate does not take minutes and a high one still has a tail to take p99 from.

Every load's seed is a function of its case only (case_seed): the same prompts, lengths and
arrival times in every run and in every re-measurement, so a confirmation measures the same
workload. The server's prefix cache is emptied before each load (serving_load.run_load).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

from pagedbench.meters.serving_load import Load, Shape

RATES = (1.0, 4.0, 16.0, math.inf)
# Requests a load needs before a percentile of it is gated; below, the figure is reported only. A median
# of fewer than ~30 requests moves with which requests fall near the middle; the p99 of n requests is
# interpolated from the worst n/100 of them, so below 100 it is the single worst request's latency.
MIN_REQUESTS = {"p50": 30, "p99": 100}
WARMUP_SEED = 10**6   # the warm-up load's own prompts, never a measured load's



def rate_key(rate: float) -> str:
    """'r4', 'rinf': the name of a load at that request rate, the prefix of its metrics' names."""
    return "rinf" if math.isinf(rate) else f"r{rate:g}"

@dataclass(frozen=True)
class ServingSizes:
    shapes: dict[str, Shape]            # name -> mix; "variable" is the rate sweep's
    shape_rates: dict[str, tuple]       # rates each mix runs at
    seconds_per_rate: float
    min_prompts: int
    max_prompts: int
    concurrency: tuple[int, ...]        # max_concurrency sweep at unbounded rate
    prefix: Shape                       # 500 shared + 100 unique, the seeds' system prompt
    prefix_prompts: int
    block_size: int | None              # None: vLLM's default for the device
    kv_cache_bytes: int | None          # None: gpu_memory_utilization sizes the pool
    enforce_eager: bool
    start_timeout_s: float              # a fresh GPU machine compiles and captures graphs first
    load_timeout_s: float
    warmup_prompts: int
    sides_together: bool                # start the prefix-caching off server beside the on one (see CPU)

    concurrency_min_prompts: int = 0    # each concurrency load has max(4 x c, this), at most max_prompts

    def prompts(self, rate: float) -> int:
        if math.isinf(rate):
            return self.max_prompts
        return max(self.min_prompts, min(self.max_prompts, math.ceil(rate * self.seconds_per_rate)))

    def rate_loads(self, shape: str, rates) -> list[tuple[str, Load]]:
        return [(rate_key(r), Load(self.shapes[shape], self.prompts(r), r,
                                   seed=case_seed("rates", shape, rate_key(r)))) for r in rates]

    def concurrency_loads(self, shape: str) -> list[tuple[str, Load]]:
        return [(f"c{c}", Load(self.shapes[shape], min(self.max_prompts, max(4 * c, self.concurrency_min_prompts)),
                               math.inf, c, seed=case_seed("concurrency", shape, f"c{c}"))) for c in self.concurrency]

    def prefix_load(self) -> Load:
        """The same prompts for the cache-on and the cache-off server: only the setting differs."""
        return Load(self.prefix, self.prefix_prompts, math.inf, seed=case_seed("prefix_caching"))

    def warmup_load(self) -> Load:
        return Load(self.shapes["variable"], self.warmup_prompts, seed=WARMUP_SEED)


def case_seed(*case) -> int:
    """A load's seed from its case alone (test, shape, load): no run, attempt or time goes into it."""
    return zlib.crc32("/".join(map(str, case)).encode()) % WARMUP_SEED


def gated(percentile: str, requests: int) -> bool:
    """Whether a 'p50' or 'p99' figure of a load of `requests` requests is estimated well enough to gate."""
    return requests >= MIN_REQUESTS[percentile]


GPU = ServingSizes(
    shapes={"variable": Shape("variable", 272, 272, 0.882),          # Uniform[32, 512] in and out
            "long_prompt": Shape("long_prompt", 1024, 32),
            "long_output": Shape("long_output", 32, 512)},
    shape_rates={"variable": RATES, "long_prompt": (16.0, math.inf), "long_output": (16.0, math.inf)},
    # 1 req/s: 32 requests (~32 s), a median gated, the p99 reported only (100 requests would be 100 s);
    # 4 req/s: 100 (25 s); 16 req/s and unbounded: 200. Concurrency 16: 100 requests (4 x 16 is too few).
    seconds_per_rate=25.0, min_prompts=32, max_prompts=200, concurrency=(16, 64, 256), concurrency_min_prompts=100,
    prefix=Shape("shared_prefix", 100, 64, 0.0, 500), prefix_prompts=100,
    block_size=None, kv_cache_bytes=None, enforce_eager=False,
    start_timeout_s=420.0, load_timeout_s=240.0, warmup_prompts=16,
    sides_together=False,               # each server takes 90 % of the GPU
)
CPU = ServingSizes(
    shapes={"variable": Shape("variable", 40, 40, 0.6),
            "long_prompt": Shape("long_prompt", 512, 8),
            "long_output": Shape("long_output", 16, 128)},
    shape_rates={"variable": RATES, "long_prompt": (math.inf,), "long_output": (math.inf,)},
    seconds_per_rate=3.0, min_prompts=4, max_prompts=32, concurrency=(1, 4, 16),
    prefix=Shape("shared_prefix", 100, 8, 0.0, 500), prefix_prompts=32,  # 32: a median to gate, ~1 s a side
    block_size=32, kv_cache_bytes=64 << 20, enforce_eager=True,
    start_timeout_s=180.0, load_timeout_s=120.0, warmup_prompts=4,
    # Two servers of a 2-layer model fit in memory, and an idle one used no CPU time in 10 s (ps), so the
    # off side starts beside the on side instead of after it: its ~30 s of imports overlap.
    sides_together=True,
)


def serving_sizes(kind: str) -> ServingSizes:
    return GPU if kind == "gpu" else CPU


def parse_rates(text: str) -> tuple[float, ...]:
    """'1,4,16,inf' -> (1.0, 4.0, 16.0, inf); anything else is a usage error before a server starts."""
    rates = []
    for part in text.split(","):
        part = part.strip()
        try:
            rate = float(part)
        except ValueError:
            raise ValueError(f"--serving-rates: {part!r} is not a number (e.g. 1,4,16,inf)") from None
        if math.isnan(rate) or rate <= 0:
            raise ValueError(f"--serving-rates: {part!r} must be a positive request rate or inf")
        rates.append(rate)
    if not rates or len(set(rates)) != len(rates):
        raise ValueError(f"--serving-rates: {text!r} must list distinct rates")
    return tuple(sorted(rates))
