"""The paired statistics of `pagedbench ab` on synthetic pairs: a planted shift is caught, no shift
gives no false alarm, and the verdict follows the interval against the threshold."""

import math
import random

import pytest

from pagedbench.gate import ab_compare, ab_stats
from pagedbench.gate.ab_stats import Paired, paired_ratio, verdict


def pairs(n: int, shift: float, noise: float, seed: int) -> tuple[list[float], list[float]]:
    """n rounds of a tok/s figure that drifts round to round (the machine), B = A x (1 + shift) x noise;
    `noise` is that of one pair's ratio, half its variance from each side."""
    rng = random.Random(seed)
    noise /= math.sqrt(2)
    a, b = [], []
    for _ in range(n):
        machine = 1000 * math.exp(rng.gauss(0, 0.10))  # shared by both sides of a pair: cancels in B/A
        a.append(machine * math.exp(rng.gauss(0, noise)))
        b.append(machine * (1 + shift) * math.exp(rng.gauss(0, noise)))
    return a, b


def test_planted_2pct_slowdown_is_caught_with_1pct_noise():
    # The interval must lie wholly past the threshold, so a 2 % shift is caught against a 1 % threshold;
    # 20 pairs of 1 % noise give an interval of about ±0.5 %.
    caught = [verdict("higher", paired_ratio(*pairs(20, -0.02, 0.01, seed)), threshold=0.01) for seed in range(40)]
    assert caught.count(ab_stats.WORSE) >= 38, caught


def test_no_shift_gives_no_false_alarm():
    seen = [verdict("higher", paired_ratio(*pairs(20, 0.0, 0.01, seed)), threshold=0.02) for seed in range(200)]
    assert ab_stats.WORSE not in seen and ab_stats.BETTER not in seen
    assert seen.count(ab_stats.SAME) >= 190, seen


def test_interval_covers_the_planted_ratio():
    covered = 0
    for seed in range(200):
        p = paired_ratio(*pairs(8, -0.05, 0.02, seed))
        covered += p.low <= 0.95 <= p.high
    assert 180 <= covered <= 200  # a 95 % interval: about 190 of 200


def test_machine_drift_cancels_in_the_pairs():
    # 10 % round-to-round drift of the machine, 0.5 % noise of the sides: the interval is set by the 0.5 %.
    p = paired_ratio(*pairs(6, 0.0, 0.005, seed=3))
    assert p.high - p.low < 0.02


def test_verdicts_by_direction():
    assert verdict("higher", Paired(0.9, 0.85, 0.95, 4)) == ab_stats.WORSE
    assert verdict("lower", Paired(0.9, 0.85, 0.95, 4)) == ab_stats.BETTER
    assert verdict("lower", Paired(1.1, 1.05, 1.15, 4)) == ab_stats.WORSE
    assert verdict("higher", Paired(1.0, 0.99, 1.01, 4)) == ab_stats.SAME
    assert verdict("higher", Paired(0.97, 0.95, 0.99, 4)) == ab_stats.UNRESOLVED  # reaches back inside ±2 %
    assert verdict("higher", Paired(1.0, None, None, 1)) == ab_stats.UNRESOLVED


def test_identical_pairs_and_bad_input():
    p = paired_ratio([2.0, 4.0], [1.0, 2.0])
    assert (p.ratio, p.low, p.high) == pytest.approx((0.5, 0.5, 0.5))
    with pytest.raises(ValueError):
        paired_ratio([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        paired_ratio([0.0, 1.0], [1.0, 1.0])


def run(tests: dict) -> dict:
    return {"tests": tests}


def entry(outcome="passed", **metrics) -> dict:
    return {"outcome": outcome, "metrics": metrics}


def m(value, direction="higher", unit="tok/s", **kw) -> dict:
    return {"value": value, "unit": unit, "direction": direction, **kw}


def test_compare_pairs_rounds_and_skips_what_is_not_gated():
    rounds = []
    for i, (a, b) in enumerate([(100, 50), (120, 61), (90, 44), (110, 55)]):
        rounds.append({
            "A": run({"t[cpu]": entry(tok=m(a), blocks=m(512, "equal", "blocks"), sides=m(1.0, gated=False))}),
            "B": run({"t[cpu]": entry(tok=m(b), blocks=m(512 if i else 256, "equal", "blocks"),
                                      sides=m(2.0, gated=False)),
                      "other[cpu]": entry(tok=m(1))})})
    rounds.append({"A": run({"t[cpu]": entry(tok=m(100))}), "B": run({"t[cpu]": entry("failed", tok=m(1))})})
    rows = {r.metric: r for r in ab_compare.compare(rounds)}
    assert set(rows) == {"tok", "blocks"}  # the ungated ratio is left out, so is the test only B ran
    assert rows["tok"].pairs == 4 and rows["tok"].says() == "B slower"  # the failed round is not paired
    assert rows["blocks"].verdict == ab_stats.DIFFERS and rows["blocks"].fails
    table = ab_compare.format_table(list(rows.values()))
    assert "B SLOWER" in table and "±2.0%" in table and "0.5" in table
    doc = ab_compare.document(list(rows.values()), {"A": {"spec": "current", "kind": "current"},
                                                    "B": {"spec": "env:X=1", "kind": "env"}},
                              [{"round": 0, "side": "A", "exit": 0}], 0.02, 0.95, ["-k", "t"], "s", "f")
    assert doc["rows"][0]["fails"]
