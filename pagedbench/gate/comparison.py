"""Comparing a test's metrics with its baseline: the band of no change, the verdict per metric, and the
table a failure prints."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from pagedbench.gate import tolerance as tol

if TYPE_CHECKING:
    from pagedbench.gate.baseline_file import Metric

# reported: a ratio whose two sides are gated where they are measured (Metric.gated False)
STATUSES = ("ok", "regressed", "improved", "new", "not_compared", "unstable", "reported")


@dataclass(frozen=True)
class Comparison:
    test_id: str
    metric: str
    unit: str
    direction: str
    baseline: float | None
    now: float
    tolerance: float   # relative: the smallest change this comparison flags
    status: str        # one of STATUSES
    note: str = ""     # why not compared, the modes of an unstable case, the first of confirmed figures
    one_run: bool = False  # the baseline figure's Metric.one_run

    @property
    def change(self) -> float | None:
        """Relative change now vs baseline (0.03 = +3 %)."""
        if self.baseline is None:
            return None
        if self.baseline == 0:
            return 0.0 if self.now == 0 else math.inf
        return (self.now - self.baseline) / self.baseline


def tolerance(base: Metric, now: Metric, k: float = tol.K) -> float:
    """Relative band of no change: the metric's floor (the larger of the recorded one and today's
    definition, so a floor raised in the code applies to old baselines), k x the noisier spread
    within a run, or the baseline's run-to-run spread."""
    return tol.band(max(base.floor, now.floor), (base.spread, now.spread), base.run_spread, k)


def compare_metric(test_id: str, name: str, base: Metric | None, now: Metric, k: float = tol.K) -> Comparison:
    if base is None:
        return Comparison(test_id, name, now.unit, now.direction, None, now.value, now.floor, "new")
    band = tolerance(base, now, k)
    c = Comparison(test_id, name, now.unit, base.direction, base.value, now.value, band, "ok", one_run=base.one_run)
    if not now.gated:
        return replace(c, status="reported")
    change = c.change
    if abs(change) <= band:
        return c
    if base.direction == "equal":
        status = "regressed"
    else:
        better = change > 0 if base.direction == "higher" else change < 0
        status = "improved" if better else "regressed"
    return replace(c, status=status)


def compare(test_id: str, base: dict[str, Metric] | None, now: dict[str, Metric], k: float = tol.K,
            not_compared: dict[str, str] | None = None) -> list[Comparison]:
    """One row per metric; metrics named in not_compared are recorded with the reason instead."""
    base = base or {}
    skip = not_compared or {}
    rows = []
    for name, m in sorted(now.items()):
        if name in skip:
            rows.append(Comparison(test_id, name, m.unit, m.direction, None, m.value, 0.0, "not_compared", skip[name]))
        else:
            rows.append(compare_metric(test_id, name, base.get(name), m, k))
    return rows


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 1000 or float(v).is_integer() else f"{v:,.4g}"


def format_table(rows: list[Comparison]) -> str:
    """Fixed-width table a reader can scan: metric, baseline, now, change, tolerance, direction."""
    header = ("metric", "baseline", "now", "change", "tolerance", "better", "status")
    body = []
    for c in rows:
        change = "-" if c.change is None else f"{100 * c.change:+.2f}%"
        status = c.status.upper() if c.status == "regressed" else c.status
        if c.status == "regressed" and c.one_run:
            status += " [baseline from one run]"
        body.append((f"{c.metric} [{c.unit}]", fmt(c.baseline), fmt(c.now), change,
                     f"±{100 * c.tolerance:.2f}%", c.direction, status + (f" ({c.note})" if c.note else "")))
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    line = lambda r: "  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *map(line, body)])


def version_differences(base: dict, now: dict) -> list[str]:
    keys = sorted(set(base) | set(now))
    return [f"{k}: baseline {base.get(k, '-')}, now {now.get(k, '-')}" for k in keys if base.get(k) != now.get(k)]
