"""The serving SLO and the highest request rate that meets it.

MLPerf Inference's Llama-3.1-8B server scenario is valid only if p99 TTFT <= 2 s and p99
TPOT <= 100 ms; `vllm bench serve --goodput` counts the requests inside the same limits.
The capacity is found as `vllm bench sweep serve_sla` finds it, from measured rates: the
SLO margin (the worse of p99 TTFT / 2 s and p99 TPOT / 100 ms, 1.0 at the limit) is
interpolated linearly between the last rate that meets it and the first that does not.
"""

from __future__ import annotations

from dataclasses import dataclass

SLO_MS = {"ttft": 2000.0, "tpot": 100.0}  # p99 limits, milliseconds


def margin(result: dict) -> float:
    """max over the SLO's metrics of p99 / limit: <= 1 meets the SLO."""
    return max(result[f"p99_{name}_ms"] / limit for name, limit in SLO_MS.items())


@dataclass(frozen=True)
class Capacity:
    req_per_s: float
    bound: str   # "interpolated", "at least" (every rate met it), "none" (no rate met it)

    def describe(self) -> str:
        if self.bound == "none":
            return "no measured rate meets the SLO"
        prefix = ">= " if self.bound == "at least" else ""
        return f"{prefix}{self.req_per_s:.2f} req/s"


def capacity(points: list[tuple[float, float]]) -> Capacity:
    """points: (achieved request rate, SLO margin) per measured rate, in increasing offered rate.

    The achieved rate stands for the offered one, so the unbounded point counts at what the
    server actually sustained."""
    if not points:
        raise ValueError("no measured rates")
    pts = sorted(points)
    last_ok = None
    for rate, m in pts:
        if m <= 1.0:
            last_ok = (rate, m)
            continue
        if last_ok is None:
            return Capacity(0.0, "none")
        r0, m0 = last_ok
        # Linear in rate between the two measured points; the margin crosses 1.0 in between.
        frac = (1.0 - m0) / (m - m0) if m != m0 else 0.0
        return Capacity(r0 + frac * (rate - r0), "interpolated")
    return Capacity(pts[-1][0], "at least")
