"""Paired statistics of an A/B run: the B/A ratio of one metric with a confidence interval from the
paired rounds, and the verdict against a threshold.

A and B are measured in the same round, one after the other, so what moves the machine between
rounds (neighbours, clocks, the page cache) moves both sides of a pair together. The ratio of a pair
cancels it; the spread of the per-pair log ratios is what is left. The interval is Student's t on
those log ratios (scipy.stats.ttest_rel on log values), back-transformed: a ratio of geometric
means. t rather than a bootstrap because an A/B run has few pairs (4 to 10): a bootstrap of 4 pairs
has only 35 distinct resamples and its percentile interval is too narrow there, while t's interval
widens with the few degrees of freedom as it should.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CONFIDENCE = 0.95
# A change smaller than this is no regression: the default of `pagedbench ab --threshold`. 2 % is the
# smallest planted change the GPU tiers must catch (issue 29); on a noisy machine the interval, not
# the threshold, decides what can be resolved.
THRESHOLD = 0.02

WORSE, BETTER, SAME, UNRESOLVED, DIFFERS = "worse", "better", "no change", "unresolved", "differs"
FAILING = (WORSE, DIFFERS)


@dataclass(frozen=True)
class Paired:
    ratio: float        # geometric mean of B/A over the pairs
    low: float | None   # the interval's ends; None with fewer than 2 pairs
    high: float | None
    pairs: int


def paired_ratio(a: list[float], b: list[float], confidence: float = CONFIDENCE) -> Paired:
    """B/A over paired rounds (a[i] and b[i] from round i), with a `confidence` interval."""
    if len(a) != len(b) or not a:
        raise ValueError(f"paired rounds need as many A as B values, at least one: {len(a)} and {len(b)}")
    if min(a) <= 0 or min(b) <= 0:
        raise ValueError("a ratio of logs needs positive values")
    logs = [math.log(y) - math.log(x) for x, y in zip(a, b)]
    ratio = math.exp(sum(logs) / len(logs))
    if len(logs) < 2:
        return Paired(ratio, None, None, len(logs))
    if max(logs) - min(logs) < 1e-12:  # identical log ratios: t is undefined, the interval is the point
        return Paired(ratio, ratio, ratio, len(logs))
    from scipy.stats import ttest_rel

    ci = ttest_rel([math.log(y) for y in b], [math.log(x) for x in a]).confidence_interval(confidence)
    return Paired(ratio, math.exp(ci.low), math.exp(ci.high), len(logs))


def verdict(direction: str, p: Paired, threshold: float = THRESHOLD) -> str:
    """WORSE when the whole interval lies beyond the threshold on the worse side for this direction
    ('higher' or 'lower' is better), BETTER on the other side, SAME when it lies within ±threshold,
    UNRESOLVED when it reaches past the threshold on either side (or there is no interval)."""
    if p.low is None or p.high is None:
        return UNRESOLVED
    slow, fast = 1 - threshold, 1 + threshold  # ratio bounds of "no change"
    if direction == "higher":
        worse, better = p.high < slow, p.low > fast
    elif direction == "lower":
        worse, better = p.low > fast, p.high < slow
    else:
        raise ValueError(f"direction {direction!r}: 'higher' or 'lower'")
    if worse:
        return WORSE
    if better:
        return BETTER
    return SAME if slow <= p.low and p.high <= fast else UNRESOLVED
