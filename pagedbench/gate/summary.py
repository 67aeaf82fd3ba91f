"""The gate's part of the terminal summary and the thresholds it printed: one line per compared
metric, then contamination, gaps, detection thresholds, stale baselines, and last the count of
metrics that were not gated and why (gate.verdicts)."""

from __future__ import annotations

from pagedbench.gate import baseline_file as bl
from pagedbench.gate import verdicts


def lines(gate) -> list[str]:
    lines = []
    for slug in sorted({e["slug"] for e in gate.results.values()}):
        for note in gate.version_notes(slug):
            lines.append(f"versions differ from baselines/{slug}.json: {note}")
    for slug in sorted(gate.missing):
        lines.append(f"no baseline for {slug}: record one with "
                     f"`pytest --benchmark-only -k {slug} --update-baselines`")
    width = max((len(c.test_id) for c in gate.comparisons), default=0)
    for c in gate.comparisons:
        change = "" if c.change is None else f" {100 * c.change:+.2f}% (tol ±{100 * c.tolerance:.2f}%)"
        base = "" if c.baseline is None else f" was {bl.fmt(c.baseline)}"
        notes = [c.note] * bool(c.note) + ["baseline from one run"] * (c.status == "regressed" and c.one_run)
        note = f"  [{'; '.join(notes)}]" if notes else ""
        lines.append(f"{c.status:12} {c.test_id:{width}} {c.metric} = {bl.fmt(c.now)} {c.unit}{base}{change}{note}")
    for test_id, e in sorted(gate.results.items()):
        if e.get("contaminated"):
            lines.append(f"contaminated {test_id}: {'; '.join(e['contaminated'])}")
        for name, why in sorted(e.get("params", {}).get("not_measured", {}).items()):
            lines.append(f"not measured {test_id} {name}: {why}")
    lines += threshold_lines(gate.comparisons)
    redone = {t: e["remeasured"] for t, e in gate.results.items() if e.get("remeasured")}
    if redone:
        lines.append(f"re-measured {len(redone)} test(s) to confirm a suspected regression, "
                     f"{sum(redone.values())} extra measurement(s) in all (at most {gate.opts.confirm} each)")
    stale = [c for c in gate.comparisons if verdicts.is_stale(c)]
    for c in stale:
        lines.append(f"{verdicts.STALE_NOTE}: {c.test_id} {c.metric} {100 * c.change:+.1f}% against a tolerance of "
                     f"±{100 * c.tolerance:.1f}%: a regression this large would compare ok")
    if stale:
        lines.append(f"{len(stale)} metric(s) improved beyond {verdicts.STALE:g}x their tolerance: re-record the "
                     "baseline (--update-baselines, merged from several runs); --strict-stale fails such runs")
    elif any(c.status == "improved" for c in gate.comparisons):
        lines.append("improvements beyond tolerance: record them with --update-baselines")
    if gate.comparisons:
        lines.append(verdicts.gated_line(gate.comparisons))  # last: what this green run does not cover
    return lines


def thresholds(rows) -> dict[tuple[str, str], list[float]]:
    """Per (test function, metric), the sorted tolerance bands of the compared, non-exact rows.
    Rows are Comparisons or their run-JSON dicts."""
    bands: dict[tuple[str, str], list[float]] = {}
    for c in rows:
        get = c.get if isinstance(c, dict) else lambda k, c=c: getattr(c, k, None)
        tol, test_id = get("tolerance"), get("test_id")
        # Exact figures (counts, and percentages derived from them) have no band: any change fails.
        if get("status") in ("ok", "regressed", "improved") and isinstance(tol, (int, float)) and tol > 0 \
                and isinstance(test_id, str):
            bands.setdefault((test_id.split("::")[-1].split("[")[0], get("metric")), []).append(tol)
    return {k: sorted(v) for k, v in sorted(bands.items())}


def threshold_lines(rows: list[bl.Comparison]) -> list[str]:
    """Per test function and metric, the smallest change the gate flags (the tolerance band)."""
    out = []
    for (func, metric), ts in thresholds(rows).items():
        span = f"±{100 * ts[0]:.1f}%" if ts[0] == ts[-1] else \
            f"±{100 * ts[0]:.1f}% .. ±{100 * ts[-1]:.1f}% (median ±{100 * ts[len(ts) // 2]:.1f}%)"
        out.append(f"detection threshold  {func} {metric}: {span} over {len(ts)} case(s)")
    return out
