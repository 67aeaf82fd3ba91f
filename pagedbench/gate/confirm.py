"""Confirm before failing: a suspected regression is measured again, and fails only when most of
the measurements regress. These turn the measurements' rows into the verdict's rows."""

from __future__ import annotations

from pagedbench.gate import baseline_file as bl


def _regressed(rows: list[bl.Comparison]) -> bool:
    return any(c.status == "regressed" for c in rows)


def _annotate(history: list[list[bl.Comparison]], confirmed: bool) -> list[bl.Comparison]:
    """The last measurement's rows; a regression not confirmed by the majority does not fail, and
    every row that moved says what each measurement gave."""
    last = history[-1]
    by_metric = [{c.metric: c for c in rows} for rows in history]
    out = []
    for c in last:
        seen = [h[c.metric] for h in by_metric if c.metric in h]
        if not any(x.status == "regressed" for x in seen):
            out.append(c)
            continue
        figures = " -> ".join(bl.fmt(x.now) for x in seen)
        if confirmed:
            status, note = c.status, f"confirmed: {figures}"
        else:
            status, note = ("ok" if c.status == "regressed" else c.status), f"not confirmed: {figures}"
        out.append(bl.Comparison(c.test_id, c.metric, c.unit, c.direction, c.baseline, c.now, c.tolerance,
                                 status, note))
    return out
