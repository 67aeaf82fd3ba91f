"""The regression gate: each test's metrics against baselines/<slug>.json.

Tests record metrics through a Recorder; after the test body the gate compares
them (a regression fails the test with a table), and at session end it writes
the run JSON and, with --update-baselines, merges the run into the baselines.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import baseline as bl
from .errors import PagedBenchError


@dataclass
class Recorder:
    """What one test measured: metrics for the gate, params and series for the report."""

    test_id: str
    slug: str
    benchmark: object | None = None
    params: dict = field(default_factory=dict)
    metrics: dict[str, bl.Metric] = field(default_factory=dict)
    series: dict[str, list] = field(default_factory=dict)

    def metric(self, name: str, value: float, unit: str, direction: str, spread: float = 0.0,
               floor: float = bl.DEFAULT_FLOOR) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise PagedBenchError(f"{self.test_id}: metric {name} is {value!r}, not a finite number")
        self.metrics[name] = bl.Metric(float(value), unit, direction, float(spread), float(floor))
        if self.benchmark is not None:
            self.benchmark.extra_info[name] = value
        return value

    def exact(self, name: str, value: int, unit: str) -> int:
        """A count that must not move at all between runs (blocks, tokens)."""
        self.metric(name, value, unit, "equal", 0.0, 0.0)
        return value

    def rate(self, name: str, work: float, seconds: list[float], unit: str, floor: float = bl.DEFAULT_FLOOR) -> float:
        """work / median(seconds), with the rounds' relative spread as the metric's noise."""
        if not seconds:
            raise PagedBenchError(f"{self.test_id}: no timed rounds for {name}")
        med = statistics.median(seconds)
        spread = statistics.stdev(seconds) / statistics.mean(seconds) if len(seconds) > 1 else 0.0
        return self.metric(name, work / med, unit, "higher", spread, floor)

    def param(self, **kw) -> None:
        self.params.update(kw)
        if self.benchmark is not None:
            self.benchmark.extra_info.update({f"param.{k}": v for k, v in kw.items()})


class Gate:
    def __init__(self, baselines_dir: Path, device: dict, versions: dict, k: float = bl.DEFAULT_K,
                 require_baseline: bool = False, strict_versions: bool = False, update: bool = False):
        self.dir = Path(baselines_dir)
        self.device, self.versions = device, versions
        self.k, self.require, self.strict, self.update = k, require_baseline, strict_versions, update
        self._baselines: dict[str, bl.Baseline | None] = {}
        self.results: dict[str, dict] = {}        # test id -> run-JSON entry
        self.comparisons: list[bl.Comparison] = []
        self.missing: set[str] = set()            # slugs with no baseline file
        self.started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")

    def baseline(self, slug: str) -> bl.Baseline | None:
        if slug not in self._baselines:
            self._baselines[slug] = bl.load(self.dir / f"{slug}.json")  # BaselineError names file and field
        return self._baselines[slug]

    def version_notes(self, slug: str) -> list[str]:
        base = self.baseline(slug)
        return bl.version_differences(base.versions, self.versions) if base else []

    def check(self, rec: Recorder) -> str | None:
        """Compare a finished test; the failure message when it regressed (or must not pass)."""
        entry = self.results.setdefault(rec.test_id, {})
        entry.update(params=rec.params, series=rec.series, slug=rec.slug,
                     metrics={n: asdict(m) for n, m in rec.metrics.items()})
        base = self.baseline(rec.slug)
        rows = bl.compare(rec.test_id, base.tests.get(rec.test_id) if base else None, rec.metrics, self.k)
        entry["comparisons"] = [{**asdict(c), "change": c.change} for c in rows]
        self.comparisons.extend(rows)
        problems = []
        if base is None:
            self.missing.add(rec.slug)
            if self.require and not self.update:
                problems.append(f"no baseline for {rec.slug} ({self.dir / (rec.slug + '.json')}): "
                                f"record one with `pytest --benchmark-only -k {rec.slug} --update-baselines`")
        elif self.strict and (diffs := self.version_notes(rec.slug)):
            problems.append("software differs from the baseline (--strict-versions):\n  " + "\n  ".join(diffs))
        if any(c.status == "regressed" for c in rows) and not self.update:
            problems.append(f"regression against {self.dir / (rec.slug + '.json')}:\n" + bl.format_table(rows))
        return "\n\n".join(problems) or None

    def record_outcome(self, test_id: str, outcome: str) -> None:
        if test_id in self.results:
            self.results[test_id]["outcome"] = outcome

    # -- session end -----------------------------------------------------------------
    def run_document(self, interrupted: bool) -> dict:
        return {
            "schema_version": bl.SCHEMA_VERSION, "slug": self.device.get("slug", "cpu"), "gpu": self.device,
            "versions": self.versions, "started": self.started,
            "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "interrupted": interrupted, "tests": self.results,
        }

    def write_run(self, path: Path, interrupted: bool) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.run_document(interrupted), indent=2, sort_keys=True) + "\n")
        tmp.replace(path)

    def write_baselines(self) -> list[Path]:
        """Merge every passed test's metrics into baselines/<slug>.json, one atomic write per slug."""
        by_slug: dict[str, dict[str, dict[str, bl.Metric]]] = {}
        for test_id, entry in self.results.items():
            if entry.get("outcome") != "passed" or not entry.get("metrics"):
                continue
            by_slug.setdefault(entry["slug"], {})[test_id] = {n: bl.Metric(**m) for n, m in entry["metrics"].items()}
        written = []
        for slug, tests in sorted(by_slug.items()):
            path = self.dir / f"{slug}.json"
            old = self.baseline(slug)  # a file we cannot read raises here and is never overwritten
            bl.write_atomic(path, bl.merge(old, slug, self.device, self.versions, tests))
            written.append(path)
        return written

    def summary_lines(self) -> list[str]:
        lines = []
        for slug in sorted({e["slug"] for e in self.results.values()}):
            for note in self.version_notes(slug):
                lines.append(f"versions differ from baselines/{slug}.json: {note}")
        for slug in sorted(self.missing):
            lines.append(f"no baseline for {slug}: record one with "
                         f"`pytest --benchmark-only -k {slug} --update-baselines`")
        width = max((len(c.test_id) for c in self.comparisons), default=0)
        for c in self.comparisons:
            change = "" if c.change is None else f" {100 * c.change:+.2f}% (tol ±{100 * c.tolerance:.2f}%)"
            base = "" if c.baseline is None else f" was {bl._fmt(c.baseline)}"
            lines.append(f"{c.status:9} {c.test_id:{width}} {c.metric} = {bl._fmt(c.now)} {c.unit}{base}{change}")
        if any(c.status == "improved" for c in self.comparisons):
            lines.append("improvements beyond tolerance: record them with --update-baselines")
        return lines
