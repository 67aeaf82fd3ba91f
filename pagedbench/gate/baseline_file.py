"""Per-device baselines of the suite's own metrics: schema, validation, atomic writes, comparison.

Timings go to pytest-benchmark's storage; this file holds what pytest-benchmark
does not compare: tok/s, peak GiB, block counts, GB/s, each with the direction
that is better, its spread within a run and its spread between runs.

A metric is *portable* when any machine of the slug must reproduce it (block
counts, waste, hit rates: they depend on tokens and block size alone), and
*machine-bound* otherwise (rates, latencies, memory read by NVML). Portable
metrics sit under `tests`; machine-bound ones under `machines[<identity>]`, so a
rate is only ever compared with one measured on the same kind of machine.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from pagedbench.errors import BaselineError
from pagedbench.gate import tolerance as tol
from pagedbench.gate.run_file import current_test_id

SCHEMA_VERSION = 2
DIRECTIONS = ("higher", "lower", "equal")  # equal: any change beyond tolerance is a regression


@dataclass(frozen=True)
class Metric:
    value: float
    unit: str
    direction: str
    spread: float = 0.0        # relative (stdev / mean) over the rounds of one run; 0 for exact counts
    floor: float = tol.DEFAULT
    portable: bool = False     # the same on every machine of the slug (see the module docstring)
    run_spread: float = 0.0    # relative spread between separate runs (baselines merged from several)
    runs: int = 1              # how many runs the value and run_spread come from
    machines: int = 1          # on how many distinct machines those runs were measured (0: not recorded)
    gated: bool = True         # False: a ratio reported beside its two sides, each gated where measured

    @property
    def one_run(self) -> bool:
        """A noisy figure with no run-to-run spread (one run, no neighbour measured in more): only its
        floor stands for that noise."""
        return self.runs < 2 and self.run_spread == 0 and self.direction != "equal"

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise BaselineError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")


Tests = dict[str, dict[str, Metric]]


@dataclass
class Machine:
    """Machine-bound metrics of one device identity, with what measured them."""

    device: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    tests: Tests = field(default_factory=dict)
    # Per test: the engine and server starts its figures were measured with (metrics.settings), and the
    # suite's commit that measured them. Portable tests keep theirs here too: defaults depend on the device.
    settings: dict[str, list] = field(default_factory=dict)
    commits: dict[str, str] = field(default_factory=dict)


@dataclass
class Baseline:
    slug: str
    versions: dict = field(default_factory=dict)
    tests: Tests = field(default_factory=dict)              # portable metrics
    machines: dict[str, Machine] = field(default_factory=dict)

    def to_json(self) -> str:
        dump = lambda ts: {t: {m: asdict(v) for m, v in ms.items()} for t, ms in ts.items()}  # noqa: E731
        doc = {
            "schema_version": SCHEMA_VERSION, "slug": self.slug, "versions": self.versions, "tests": dump(self.tests),
            "machines": {i: {"device": m.device, "versions": m.versions, "tests": dump(m.tests),
                             "settings": m.settings, "commits": m.commits}
                         for i, m in self.machines.items()},
        }
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"

    def metrics_for(self, test_id: str, identity: str) -> tuple[dict[str, Metric], dict[str, Metric] | None]:
        """(portable metrics, machine-bound metrics of this identity or None) of one test."""
        machine = self.machines.get(identity)
        return self.tests.get(test_id, {}), (machine.tests.get(test_id, {}) if machine else None)

    def machine(self, identity: str) -> Machine | None:
        return self.machines.get(identity)

    def identities_with(self, test_id: str) -> list[str]:
        return sorted(i for i, m in self.machines.items() if test_id in m.tests)

    def versions_for(self, identity: str) -> dict:
        machine = self.machines.get(identity)
        return machine.versions if machine else self.versions


def device_identity(device: dict) -> str:
    """What makes two machines' rates comparable: the GPU model and its power limit, or the CPU
    model, core count and the ISA features the kernels use."""
    if device.get("identity"):
        return device["identity"]
    if device.get("slug", "cpu") != "cpu":
        watts = device.get("power_limit_w") or 0
        return f"{device.get('name', '?')}, {watts:.0f} W" if watts else str(device.get("name", "?"))
    return f"{device.get('name', '?')} (cores and ISA not recorded)"


# ---- reading --------------------------------------------------------------------------

def _number(path, where: str, value, allow_negative: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BaselineError(f"{path}: {where} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise BaselineError(f"{path}: {where} is {value!r}, not a finite number")
    if value < 0 and not allow_negative:
        raise BaselineError(f"{path}: {where} is negative ({value!r})")
    return float(value)


def _metric(path, where: str, m, portable_default: bool | None = None) -> Metric:
    if not isinstance(m, dict):
        raise BaselineError(f"{path}: {where} must be an object")
    missing = {"value", "unit", "direction"} - m.keys()
    if missing:
        raise BaselineError(f"{path}: {where} lacks {', '.join(sorted(missing))}")
    if m["direction"] not in DIRECTIONS:
        raise BaselineError(f"{path}: {where}.direction is {m['direction']!r}, expected one of {DIRECTIONS}")
    floor = _number(path, f"{where}.floor", m.get("floor", tol.DEFAULT))
    if portable_default is None:  # schema 1 did not say; its exact counts and 0-floor figures were the portable ones
        portable_default = m["direction"] == "equal" or floor == 0.0
    runs = m.get("runs", 1)
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise BaselineError(f"{path}: {where}.runs must be a positive integer, got {runs!r}")
    return Metric(value=_number(path, f"{where}.value", m["value"]), unit=str(m["unit"]), direction=m["direction"],
                  spread=_number(path, f"{where}.spread", m.get("spread", 0.0)), floor=floor,
                  portable=bool(m.get("portable", portable_default)),
                  run_spread=_number(path, f"{where}.run_spread", m.get("run_spread", 0.0)), runs=runs,
                  machines=_count(path, f"{where}.machines", m.get("machines", 0)), gated=m.get("gated", True) is not False)


def _count(path, where: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BaselineError(f"{path}: {where} must be a whole number 0 or more, got {value!r}")
    return value


def _tests(path, where: str, doc, portable_default: bool | None = None) -> Tests:
    if not isinstance(doc, dict):
        raise BaselineError(f"{path}: {where} must be an object of tests")
    out: Tests = {}
    for test_id, metrics in doc.items():
        if not isinstance(metrics, dict):
            raise BaselineError(f"{path}: {where}[{test_id!r}] must be an object of metrics")
        out[current_test_id(test_id)] = {name: _metric(path, f"{where}[{test_id!r}][{name!r}]", m, portable_default)
                        for name, m in metrics.items()}
    return out


def _split(tests: Tests) -> tuple[Tests, Tests]:
    portable: Tests = {}
    bound: Tests = {}
    for t, ms in tests.items():
        for n, m in ms.items():
            (portable if m.portable else bound).setdefault(t, {})[n] = m
    return portable, bound


def parse(text: str, path: Path | str = "<baseline>") -> Baseline:
    """Validate a baseline document (schema 2, or schema 1 read as one machine); every problem
    names the file and the field."""
    try:
        doc = json.loads(text)  # Python reads NaN/Infinity; _number refuses them with the field named
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    if not isinstance(doc, dict):
        raise BaselineError(f"{path}: top level must be an object")
    version = doc.get("schema_version")
    if type(version) is not int or version not in (1, SCHEMA_VERSION):  # true and 1.0 == 1 in Python
        raise BaselineError(f"{path}: schema_version is {version!r}, this suite reads 1 and {SCHEMA_VERSION}")
    for key, typ in (("slug", str), ("versions", dict), ("tests", dict)):
        if not isinstance(doc.get(key), typ):
            raise BaselineError(f"{path}: '{key}' missing or not a {typ.__name__}")
    if version == 1:  # one machine, no identity recorded beyond the device dict
        if not isinstance(doc.get("gpu"), dict):
            raise BaselineError(f"{path}: 'gpu' missing or not a dict")
        portable, bound = _split(_tests(path, "tests", doc["tests"]))
        machines = {device_identity(doc["gpu"]): Machine(doc["gpu"], doc["versions"], bound)} if bound else {}
        return Baseline(doc["slug"], doc["versions"], portable, machines)
    if not isinstance(doc.get("machines"), dict):
        raise BaselineError(f"{path}: 'machines' missing or not a dict")
    machines = {}
    for ident, m in doc["machines"].items():
        where = f"machines[{ident!r}]"
        if not isinstance(m, dict) or not isinstance(m.get("device"), dict) or not isinstance(m.get("versions"), dict):
            raise BaselineError(f"{path}: {where} must hold 'device', 'versions' and 'tests' objects")
        recorded = {}
        for key in ("settings", "commits"):
            recorded[key] = m.get(key, {})
            if not isinstance(recorded[key], dict):
                raise BaselineError(f"{path}: {where}.{key} must be an object keyed by test id")
            recorded[key] = {current_test_id(t): v for t, v in recorded[key].items()}
        machines[ident] = Machine(m["device"], m["versions"], _tests(path, f"{where}.tests", m.get("tests"), False),
                                  **recorded)
    return Baseline(doc["slug"], doc["versions"], _tests(path, "tests", doc["tests"], True), machines)


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
        # mkstemp makes the file 0600: keep the old file's mode, or what a plain write would give.
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def merge(old: Baseline | None, slug: str, device: dict, versions: dict, measured: Tests,
          settings: dict[str, list] | None = None, commit: str = "") -> Baseline:
    """Old baseline with the measured tests replaced: portable metrics for every machine, the
    rest under this device's identity, with the settings and commit they were measured with.
    Tests not run this time are kept."""
    portable, bound = _split(measured)
    ident = device_identity(device)
    tests = dict(old.tests) if old else {}
    tests.update(portable)
    machines = dict(old.machines) if old else {}
    prior = machines.get(ident)
    kept = dict(prior.tests) if prior else {}
    kept.update(bound)
    recorded_settings = {t: v for t, v in (prior.settings if prior else {}).items() if t not in measured}
    recorded_settings.update({t: settings[t] for t in measured if settings and settings.get(t) is not None})
    commits = {t: v for t, v in (prior.commits if prior else {}).items() if t not in measured}
    commits.update({t: commit for t in measured if commit})
    if kept or recorded_settings or commits:
        machines[ident] = Machine({k: v for k, v in device.items() if k != "health"}, versions, kept,
                                  recorded_settings, commits)
    return Baseline(slug, versions, tests, machines)


# ---- comparison -------------------------------------------------------------------

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
