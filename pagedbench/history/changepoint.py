"""Steps in a metric's history: where a series moved to a new level, and by how much.

The detection is ruptures' PELT (an exact penalized segmentation, the family of asv's
step_detect) on the series scaled by its own noise; the penalty grows with log(n) like
BIC, so a longer history does not find more steps by chance. Noise is read from the
series itself (the median absolute first difference), so a step is judged against how
much this metric moves between neighbouring runs. Each step is then reported with its
levels before and after (medians), its size and a Welch-like significance.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

MIN_SEGMENT = 2        # a level needs two runs: one odd run is noise, not a step
PENALTY_SCALE = 6.0    # x log(n) on the noise-scaled series: chosen on the synthetic comparison (pagedbench.history.detectors)
MIN_SIGNIFICANCE = 3.0  # |after - before| in units of the standard error of the two levels


@dataclass(frozen=True)
class Step:
    index: int           # first point of the new level
    before: float
    after: float
    significance: float

    @property
    def size(self) -> float:
        return (self.after - self.before) / self.before if self.before else math.inf


def noise_of(values: list[float]) -> float:
    """Robust per-point noise: median |first difference| / (0.6745 * sqrt 2), steps barely move it."""
    diffs = [abs(b - a) for a, b in zip(values, values[1:])]
    if not diffs:
        return 0.0
    return statistics.median(diffs) / (0.6745 * math.sqrt(2))


def levels(values: list[float], bkps: list[int], sigma: float) -> list[Step]:
    """A Step at each breakpoint (ruptures' convention: the first index of a new level, len(values) last)."""
    steps = []
    bounds = [0, *bkps]
    for i in range(1, len(bounds) - 1):
        left, right = values[bounds[i - 1]:bounds[i]], values[bounds[i]:bounds[i + 1]]
        before, after = statistics.median(left), statistics.median(right)
        se = sigma * math.sqrt(1 / len(left) + 1 / len(right)) or 1e-12
        steps.append(Step(bounds[i], before, after, abs(after - before) / se))
    return steps


def segment(values: list[float], algo: str, model: str = "l2", penalty_scale: float = PENALTY_SCALE) -> list[Step]:
    """ruptures' `algo` (Pelt or Binseg) on the noise-scaled series; steps kept when significant."""
    import numpy as np
    import ruptures as rpt
    n = len(values)
    sigma = noise_of(values)
    if n < 2 * MIN_SEGMENT or sigma == 0:
        return []
    signal = np.asarray(values, dtype=float).reshape(-1, 1) / sigma
    bkps = getattr(rpt, algo)(model=model, min_size=MIN_SEGMENT, jump=1).fit(signal).predict(
        pen=penalty_scale * math.log(n))
    return [s for s in levels(values, bkps, sigma) if s.significance >= MIN_SIGNIFICANCE]


def pelt(values: list[float], penalty_scale: float = PENALTY_SCALE, model: str = "l2") -> list[Step]:
    """Steps found by ruptures' PELT (exact penalized segmentation): the detector the suite uses."""
    return segment(values, "Pelt", model, penalty_scale)
