"""What the serving tier runs on each kind of device: request mixes, rates, sizes.

The GPU mixes follow vLLM's serving benchmarks (random dataset; vLLM's perf CI runs QPS
1/4/16/inf); the CPU tier is the same set scaled to a 2-layer model on 2 cores. The number
of prompts per rate is what fills `seconds_per_rate` at that rate, within [min, max], so a
low rate does not take minutes and a high one still has a tail to take p99 from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pagedbench.meters.serving_load import Shape

RATES = (1.0, 4.0, 16.0, math.inf)


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

    def prompts(self, rate: float) -> int:
        if math.isinf(rate):
            return self.max_prompts
        return max(self.min_prompts, min(self.max_prompts, math.ceil(rate * self.seconds_per_rate)))


GPU = ServingSizes(
    shapes={"variable": Shape("variable", 272, 272, 0.882),          # Uniform[32, 512] in and out
            "long_prompt": Shape("long_prompt", 1024, 32),
            "long_output": Shape("long_output", 32, 512)},
    shape_rates={"variable": RATES, "long_prompt": (16.0, math.inf), "long_output": (16.0, math.inf)},
    seconds_per_rate=10.0, min_prompts=16, max_prompts=200, concurrency=(16, 64, 256),
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
    prefix=Shape("shared_prefix", 100, 8, 0.0, 500), prefix_prompts=16,
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
