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
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass

MIN_SEGMENT = 2        # a level needs two runs: one odd run is noise, not a step
PENALTY_SCALE = 6.0    # x log(n) on the noise-scaled series: chosen on the synthetic comparison (compare_detectors)
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


def _levels(values: list[float], bkps: list[int], sigma: float) -> list[Step]:
    steps = []
    bounds = [0, *bkps]
    for i in range(1, len(bounds) - 1):
        left, right = values[bounds[i - 1]:bounds[i]], values[bounds[i]:bounds[i + 1]]
        before, after = statistics.median(left), statistics.median(right)
        se = sigma * math.sqrt(1 / len(left) + 1 / len(right)) or 1e-12
        steps.append(Step(bounds[i], before, after, abs(after - before) / se))
    return steps


def _segment(values: list[float], algo: str, model: str = "l2", penalty_scale: float = PENALTY_SCALE) -> list[Step]:
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
    return [s for s in _levels(values, bkps, sigma) if s.significance >= MIN_SIGNIFICANCE]


def pelt(values: list[float], penalty_scale: float = PENALTY_SCALE, model: str = "l2") -> list[Step]:
    """Steps found by ruptures' PELT (exact penalized segmentation): the detector the suite uses."""
    return _segment(values, "Pelt", model, penalty_scale)


def binseg(values: list[float], penalty_scale: float = PENALTY_SCALE) -> list[Step]:
    """Binary segmentation with the same cost and penalty (greedy, faster, can miss close steps)."""
    return _segment(values, "Binseg", "l2", penalty_scale)


def windowed_median(values: list[float], window: int = 5, threshold: float = 0.05) -> list[Step]:
    """PyTorch's vLLM dashboard rule: the two latest points both off the trailing median by more than
    threshold. Applied at every position, it reports where that first happens after a quiet stretch."""
    steps = []
    i = window
    while i < len(values) - 1:
        ref = statistics.median(values[i - window:i])
        if all(abs(v - ref) / ref > threshold for v in values[i:i + 2]):
            steps.append(Step(i, ref, statistics.median(values[i:i + window]), 0.0))
            i += window
        else:
            i += 1
    return steps


DETECTORS: dict[str, Callable[[list[float]], list[Step]]] = {
    "ruptures PELT (l2)": pelt,
    "ruptures BinSeg (l2)": binseg,
    "ruptures PELT (rbf)": lambda v: pelt(v, model="rbf", penalty_scale=1.0),
    "windowed median (5 %)": windowed_median,
}


def synthetic(n: int, cv: float, step: float, at: int | None, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [100.0 * (1 + (step if at is not None and i >= at else 0.0)) * (1 + rng.gauss(0, cv)) for i in range(n)]


def stepped_series(trials: int, n: int, seed: int) -> list[tuple[list[float], int]]:
    """Series with one step of 3-10 %, at least 3x the noise (CV 1-3 % then), at a random place
    with at least 6 runs on either side."""
    rng = random.Random(seed)
    out = []
    for t in range(trials):
        size = rng.uniform(0.03, 0.10)
        cv = rng.choice([c for c in (0.01, 0.02, 0.03, 0.05) if size >= 3 * c])
        at = rng.randrange(6, n - 6)
        out.append((synthetic(n, cv, size * rng.choice((-1, 1)), at, seed * 1000 + t), at))
    return out


def flat_series(trials: int, n: int, seed: int) -> list[list[float]]:
    rng = random.Random(seed + 1)
    return [synthetic(n, rng.choice((0.01, 0.02, 0.03, 0.05)), 0.0, None, seed * 1000 + 500 + t) for t in range(trials)]


def compare_detectors(trials: int = 40, n: int = 30, seed: int = 0) -> list[dict]:
    """Per detector: steps found within 2 points, extra steps on stepped series, and step-free
    series in which it found any step."""
    stepped, flat = stepped_series(trials, n, seed), flat_series(trials, n, seed)
    rows = []
    for name, detect in DETECTORS.items():
        found = extra = 0
        for values, at in stepped:
            steps = detect(values)
            hit = [s for s in steps if abs(s.index - at) <= 2]
            found += bool(hit)
            extra += len(steps) - min(len(hit), 1)
        rows.append({"detector": name, "found": found, "stepped": trials, "extra": extra,
                     "false_series": sum(bool(detect(v)) for v in flat), "flat": trials})
    return rows
