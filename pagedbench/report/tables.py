"""Cells and markdown tables: thousands separators, fixed decimals, '–' where there is no data."""

from __future__ import annotations

import math

from pagedbench.gate.run_file import is_number
from pagedbench.report.results import Result

DASH = "–"          # a cell with no data


def fmt(v, digits: int = 0, pct: bool = False) -> str:
    """Thousands separators, fixed decimals, '–' for no data."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return DASH
    if not is_number(v):
        return str(v)
    return f"{v:,.{digits}f}" + ("%" if pct else "")


def times(v, digits: int = 1) -> str:
    """A factor: '3.2×', or '–'."""
    return DASH if v is None else fmt(v, digits) + "×"


ACROSS_RUNS = "across runs"  # a ratio of two tests' figures from separate sessions, not measured as one


def speedup_cell(entry: tuple[float, bool] | None) -> str:
    """A (speed-up, measured in one session) pair: '4.3×', '4.1× (across runs)', or '–'."""
    if entry is None:
        return DASH
    value, one_session = entry
    return times(value) + ("" if one_session else f" ({ACROSS_RUNS})")


def ratio(a, b) -> float | None:
    return a / b if a is not None and b else None


def md_table(headers: list[str], rows: list[list[str]], numeric_from: int = 1, text: tuple[int, ...] = ()) -> str:
    """A GitHub markdown table; columns from numeric_from on are right-aligned, except the text ones."""
    align = ["---" if i < numeric_from or i in text else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


NOT_IN_RUN = "_Not in this run._"
NOT_IN_RUN_PLOT = "_Not in this run; plot skipped._"


def plot_link(name: str | None, alt: str, why_missing: str = "not in this run") -> str:
    return f"![{alt}]({name})" if name else f"_Plot skipped: {why_missing}._"


def varying_label(r: Result, rs: list[Result], keys: tuple[str, ...], short: dict | None = None) -> str:
    """Label a result by just the params that differ between rs (keeps plot ticks short)."""
    short = short or {}
    parts = [f"{short.get(k, k)} {fmt(r.param(k))}" for k in keys if len({str(x.param(k)) for x in rs}) > 1]
    return ", ".join(parts) or ", ".join(f"{short.get(k, k)} {fmt(r.param(k))}" for k in keys[:1])
