"""Per-GPU baselines of the suite's own metrics: schema, validation, atomic writes, comparison.

Timings go to pytest-benchmark's storage; this file holds what pytest-benchmark
does not compare: tok/s, peak GiB, block counts, GB/s, each with the direction
that is better and the spread measured over its rounds.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import BaselineError

SCHEMA_VERSION = 1
DIRECTIONS = ("higher", "lower", "equal")  # equal: any change beyond tolerance is a regression
DEFAULT_FLOOR = 0.02  # relative; a metric may ask for its own
DEFAULT_K = 3.0       # tolerance = max(floor, K x the larger relative spread)


@dataclass(frozen=True)
class Metric:
    value: float
    unit: str
    direction: str
    spread: float = 0.0      # relative (stdev / mean over the rounds), 0 for exact counts
    floor: float = DEFAULT_FLOOR

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise BaselineError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")


@dataclass
class Baseline:
    slug: str
    gpu: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    tests: dict[str, dict[str, Metric]] = field(default_factory=dict)

    def to_json(self) -> str:
        doc = {
            "schema_version": SCHEMA_VERSION,
            "slug": self.slug,
            "gpu": self.gpu,
            "versions": self.versions,
            "tests": {t: {m: asdict(v) for m, v in ms.items()} for t, ms in self.tests.items()},
        }
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def _number(path, where: str, value, allow_negative: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BaselineError(f"{path}: {where} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise BaselineError(f"{path}: {where} is {value!r}, not a finite number")
    if value < 0 and not allow_negative:
        raise BaselineError(f"{path}: {where} is negative ({value!r})")
    return float(value)


def parse(text: str, path: Path | str = "<baseline>") -> Baseline:
    """Validate a baseline document; every problem names the file and the field."""
    try:
        # NaN/Infinity are not JSON; Python accepts them unless told otherwise.
        doc = json.loads(text, parse_constant=lambda c: float(c))
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    if not isinstance(doc, dict):
        raise BaselineError(f"{path}: top level must be an object")
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BaselineError(f"{path}: schema_version is {version!r}, this suite reads {SCHEMA_VERSION}")
    for key, typ in (("slug", str), ("gpu", dict), ("versions", dict), ("tests", dict)):
        if not isinstance(doc.get(key), typ):
            raise BaselineError(f"{path}: '{key}' missing or not a {typ.__name__}")
    tests: dict[str, dict[str, Metric]] = {}
    for test_id, metrics in doc["tests"].items():
        if not isinstance(metrics, dict):
            raise BaselineError(f"{path}: tests[{test_id!r}] must be an object of metrics")
        tests[test_id] = {}
        for name, m in metrics.items():
            where = f"tests[{test_id!r}][{name!r}]"
            if not isinstance(m, dict):
                raise BaselineError(f"{path}: {where} must be an object")
            missing = {"value", "unit", "direction"} - m.keys()
            if missing:
                raise BaselineError(f"{path}: {where} lacks {', '.join(sorted(missing))}")
            if m["direction"] not in DIRECTIONS:
                raise BaselineError(f"{path}: {where}.direction is {m['direction']!r}, expected one of {DIRECTIONS}")
            tests[test_id][name] = Metric(
                value=_number(path, f"{where}.value", m["value"]),
                unit=str(m["unit"]),
                direction=m["direction"],
                spread=_number(path, f"{where}.spread", m.get("spread", 0.0)),
                floor=_number(path, f"{where}.floor", m.get("floor", DEFAULT_FLOOR)),
            )
    return Baseline(doc["slug"], doc["gpu"], doc["versions"], tests)


def load(path: Path) -> Baseline | None:
    """The baseline at path, None when there is none, BaselineError when it is broken."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BaselineError(f"{path}: cannot read ({exc})") from exc
    return parse(text, path)


def write_atomic(path: Path, baseline: Baseline) -> None:
    """Write via a temporary file and rename: an interrupted write leaves the old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = baseline.to_json()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def merge(old: Baseline | None, slug: str, gpu: dict, versions: dict,
          measured: dict[str, dict[str, Metric]]) -> Baseline:
    """Old baseline with the measured tests replaced; tests not run this time are kept."""
    tests = dict(old.tests) if old else {}
    tests.update(measured)
    return Baseline(slug, gpu, versions, tests)


# ---- comparison -------------------------------------------------------------------

@dataclass(frozen=True)
class Comparison:
    test_id: str
    metric: str
    unit: str
    direction: str
    baseline: float | None
    now: float
    tolerance: float   # relative
    status: str        # ok | regressed | improved | new

    @property
    def change(self) -> float | None:
        """Relative change now vs baseline (0.03 = +3 %)."""
        if self.baseline is None:
            return None
        if self.baseline == 0:
            return 0.0 if self.now == 0 else math.inf
        return (self.now - self.baseline) / self.baseline


def tolerance(base: Metric, now: Metric, k: float = DEFAULT_K) -> float:
    """Relative band of no change: the metric's floor (the larger of the recorded one and today's
    definition, so a floor raised in the code applies to old baselines), or k x the noisier spread."""
    return max(base.floor, now.floor, k * max(base.spread, now.spread))


def compare_metric(test_id: str, name: str, base: Metric | None, now: Metric, k: float = DEFAULT_K) -> Comparison:
    if base is None:
        return Comparison(test_id, name, now.unit, now.direction, None, now.value, now.floor, "new")
    tol = tolerance(base, now, k)
    c = Comparison(test_id, name, now.unit, base.direction, base.value, now.value, tol, "ok")
    change = c.change
    if abs(change) <= tol:
        return c
    if base.direction == "equal":
        status = "regressed"
    else:
        better = change > 0 if base.direction == "higher" else change < 0
        status = "improved" if better else "regressed"
    return Comparison(test_id, name, now.unit, base.direction, base.value, now.value, tol, status)


def compare(test_id: str, base: dict[str, Metric] | None, now: dict[str, Metric], k: float = DEFAULT_K) -> list[Comparison]:
    base = base or {}
    return [compare_metric(test_id, name, base.get(name), m, k) for name, m in sorted(now.items())]


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 1000 or float(v).is_integer() else f"{v:,.4g}"


def format_table(rows: list[Comparison]) -> str:
    """Fixed-width table a reader can scan: metric, baseline, now, change, tolerance, direction."""
    header = ("metric", "baseline", "now", "change", "tolerance", "better", "status")
    body = []
    for c in rows:
        change = "-" if c.change is None else f"{100 * c.change:+.2f}%"
        body.append((f"{c.metric} [{c.unit}]", _fmt(c.baseline), _fmt(c.now), change,
                     f"±{100 * c.tolerance:.2f}%", c.direction, c.status.upper() if c.status == "regressed" else c.status))
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    line = lambda r: "  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *map(line, body)])


def version_differences(base: dict, now: dict) -> list[str]:
    keys = sorted(set(base) | set(now))
    return [f"{k}: baseline {base.get(k, '-')}, now {now.get(k, '-')}" for k in keys if base.get(k) != now.get(k)]
