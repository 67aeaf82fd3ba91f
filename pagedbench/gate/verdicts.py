"""What a comparison row says beyond its status: a stale baseline, and why a metric was not gated.

A green run must mean "no regression beyond the stated threshold". Two things break that quietly:
a baseline the code has outgrown (today's figure far better than the stored one, so a regression
of today's figure would still read "ok"), and metrics that were never compared. Both are said out
loud: stale rows carry a note, and the summary's last line counts the metrics left ungated, by reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from pagedbench.gate.baseline_file import Comparison

# An improvement beyond this many times its tolerance: the baseline no longer describes the code.
# Against it, a regression as large as the improvement would compare "ok".
STALE = 2.0
STALE_NOTE = "baseline looks stale"

GATED = ("ok", "regressed", "improved")


def is_stale(c: Comparison) -> bool:
    change = c.change
    return (c.status == "improved" and change is not None and c.tolerance > 0
            and abs(change) > STALE * c.tolerance)


def note(c: Comparison, text: str) -> Comparison:
    return replace(c, note="; ".join(x for x in (c.note, text) if x))


def flag_stale(c: Comparison) -> Comparison:
    return note(c, STALE_NOTE) if is_stale(c) else c


def ungated_reason(c: Comparison) -> str | None:
    """Why a row was not gated, in a few words; None for a gated row."""
    if c.status in GATED:
        return None
    if c.status == "new":
        return "no baseline"
    if c.status == "reported":
        return "report-only ratio"
    if c.status == "unstable":
        return "unstable (two modes)"
    text = c.note or ""
    if text.startswith("baseline from other settings"):
        return "other settings"
    if text.startswith("baseline from "):
        return "baseline of another machine identity"
    if text.startswith("machine busy"):
        return "busy machine"
    return "machine slower than the baseline's" if "slower" in text else (text.split(":")[0] or c.status)


def gated_line(rows: list[Comparison]) -> str:
    """The summary's last line: how many metrics were gated, and how many were not and why."""
    reasons = Counter(r for r in map(ungated_reason, rows) if r)
    gated = sum(c.status in GATED for c in rows)
    stale = sum(is_stale(c) for c in rows)
    head = f"gated {gated} metric(s)"
    if stale:
        head += f" ({stale} against a stale baseline: {STALE_NOTE})"
    if not reasons:
        return head + "; every metric measured was gated"
    parts = ", ".join(f"{n} {why}" for why, n in reasons.most_common())
    return f"{head}; NOT gated {sum(reasons.values())}: {parts}"
