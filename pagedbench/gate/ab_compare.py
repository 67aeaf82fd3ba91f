"""An A/B run's comparison: the per-round run JSONs of both sides in, one row per gated metric out
(A, B, ratio, interval, threshold, verdict), the gate-style table and the A/B run JSON
(pagedbench/schemas/ab.schema.json).

A row pairs the rounds in which both sides passed and measured the metric cleanly. Only gated figures
are compared: a ratio the suite reports beside its two sides (`gated: false`) would count a change of
either side twice. Exact counts ('equal') are left out while A and B agree in every round; when they
differ that is the verdict, outright, as the gate treats a moved count.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

from pagedbench import schemas
from pagedbench.errors import PagedBenchError
from pagedbench.gate import ab_stats
from pagedbench.gate.comparison import fmt

AB_SCHEMA_VERSION = 1
SIDES = ("A", "B")
# Units in which "worse" means slower: the verdict says so in the words a reader of a speed table expects.
SPEED_UNITS = ("tok/s", "req/s", "ms", "us", "s", "call/s")


@dataclass(frozen=True)
class Row:
    test_id: str
    metric: str
    unit: str
    direction: str
    a: float            # median of A's rounds
    b: float            # median of B's rounds
    ratio: float | None  # geometric mean of B/A over the pairs (None: a count that was 0 on A)
    low: float | None
    high: float | None
    pairs: int
    threshold: float
    verdict: str

    @property
    def fails(self) -> bool:
        return self.verdict in ab_stats.FAILING

    def says(self) -> str:
        """The verdict in words: 'B slower' for a time or rate that got worse, 'B worse' otherwise."""
        if self.verdict in (ab_stats.WORSE, ab_stats.BETTER):
            speed = self.unit in SPEED_UNITS
            word = {ab_stats.WORSE: "slower" if speed else "worse",
                    ab_stats.BETTER: "faster" if speed else "better"}[self.verdict]
            return f"B {word}"
        return self.verdict


def _clean(entry: dict | None) -> dict:
    """The metrics of a test entry that passed and was not contaminated; {} otherwise."""
    if not entry or entry.get("outcome") != "passed" or entry.get("contaminated"):
        return {}
    return entry.get("metrics", {})


def paired_values(rounds: list[dict]) -> dict[tuple[str, str], tuple[dict, list[float], list[float]]]:
    """(test id, metric) -> (the metric's description, A's values, B's values), paired by round.
    rounds: one {"A": run JSON, "B": run JSON} per round ({} for a side that wrote none)."""
    out: dict = {}
    for rnd in rounds:
        tests = set(rnd["A"].get("tests", {})) | set(rnd["B"].get("tests", {}))
        for test_id in sorted(tests):
            a, b = (_clean(rnd[s].get("tests", {}).get(test_id)) for s in SIDES)
            for name in sorted(set(a) & set(b)):
                if a[name].get("gated", True) is False:
                    continue
                _, xs, ys = out.setdefault((test_id, name), (a[name], [], []))
                xs.append(float(a[name]["value"]))
                ys.append(float(b[name]["value"]))
    return out


def compare(rounds: list[dict], threshold: float = ab_stats.THRESHOLD,
            confidence: float = ab_stats.CONFIDENCE) -> list[Row]:
    rows = []
    for (test_id, name), (m, xs, ys) in paired_values(rounds).items():
        a, b = statistics.median(xs), statistics.median(ys)
        if m["direction"] == "equal":
            if xs == ys:
                continue
            rows.append(Row(test_id, name, m["unit"], "equal", a, b, b / a if a else None, None, None,
                            len(xs), 0.0, ab_stats.DIFFERS))
            continue
        if min(xs + ys) <= 0:  # no ratio of a zero figure (a count of preemptions that stayed 0)
            continue
        p = ab_stats.paired_ratio(xs, ys, confidence)
        rows.append(Row(test_id, name, m["unit"], m["direction"], a, b, p.ratio, p.low, p.high, p.pairs,
                        threshold, ab_stats.verdict(m["direction"], p, threshold)))
    return rows


def _ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.3f}"


def _pct(r: float | None) -> str:
    return "-" if r is None else f"{100 * (r - 1):+.1f}%"


def format_table(rows: list[Row], confidence: float = ab_stats.CONFIDENCE) -> str:
    """Fixed-width, one line per metric: test, metric, A, B, ratio, interval, threshold, verdict."""
    header = ("test", "metric", "A", "B", "B/A", f"{100 * confidence:.0f}% interval", "threshold", "better",
              "verdict")
    body = []
    for r in rows:
        interval = "-" if r.low is None else f"{r.low:.3f} .. {r.high:.3f} ({_pct(r.low)} .. {_pct(r.high)})"
        says = r.says().upper() if r.fails else r.says()
        body.append((r.test_id.rsplit("::", 1)[-1], f"{r.metric} [{r.unit}]", fmt(r.a), fmt(r.b), _ratio(r.ratio),
                     interval, f"±{100 * r.threshold:.1f}%" if r.direction != "equal" else "exact",
                     r.direction, f"{says} ({r.pairs} pairs)"))
    widths = [max(len(x[i]) for x in [header, *body]) for i in range(len(header))]
    line = lambda x: "  ".join(c.ljust(w) for c, w in zip(x, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *map(line, body)])


def summary(rows: list[Row]) -> str:
    failing = [r for r in rows if r.fails]
    unresolved = sum(r.verdict == ab_stats.UNRESOLVED for r in rows)
    head = f"{len(rows)} metric(s) compared: {len(failing)} B worse, {unresolved} unresolved"
    return head + ("" if not failing else "; " + "; ".join(
        f"{r.test_id.rsplit('::', 1)[-1]} {r.metric} {fmt(r.a)} -> {fmt(r.b)} {r.unit} (B/A {_ratio(r.ratio)}, "
        f"interval {'-' if r.low is None else f'{r.low:.3f}..{r.high:.3f}'}, threshold ±{100 * r.threshold:.1f}%)"
        for r in failing))


def document(rows: list[Row], sides: dict, runs: list[dict], threshold: float, confidence: float,
             command: list[str], started: str, finished: str) -> dict:
    """The A/B run JSON: what was compared, every round's side runs, and the rows."""
    doc = {"schema_version": AB_SCHEMA_VERSION, "sides": sides, "threshold": threshold, "confidence": confidence,
           "method": "paired t interval of log(B/A) (scipy.stats.ttest_rel on log values), back-transformed",
           "command": command, "started": started, "finished": finished, "runs": runs,
           "rows": [{**asdict(r), "says": r.says(), "fails": r.fails} for r in rows]}
    if why := schemas.problem(doc, "ab"):
        raise PagedBenchError(f"A/B run JSON: {why}")
    return doc
