"""Per-device baselines, the suite's one store of measured figures: model, reading, atomic writes, merging.

baselines/<slug>.json holds the suite's metrics (tok/s, peak GiB, block counts, GB/s), each with
the direction that is better, its spread within a run and its spread between runs, and, per test
and machine identity, the timing stats pytest-benchmark shows with --benchmark-compare
(benchmark_compare.py feeds them to it). Format: pagedbench/schemas/baseline.schema.json.

A metric is *portable* when any machine of the slug must reproduce it (block counts, waste, hit
rates: they depend on tokens and block size alone), and *machine-bound* otherwise (rates,
latencies, memory read by NVML). Portable metrics sit under `tests`; machine-bound ones under
`machines[<identity>]`, so a rate is only ever compared with one measured on the same kind of machine.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import filelock

from pagedbench import schemas
from pagedbench.errors import BaselineError
from pagedbench.gate import tolerance as tol
from pagedbench.gate.comparison import (  # noqa: F401 (the gate and the report read them as baseline_file.*)
    STATUSES,
    Comparison,
    compare,
    compare_metric,
    fmt,
    format_table,
    tolerance,
    version_differences,
)
from pagedbench.gate.run_file import current_test_id

SCHEMA_VERSION = 3
READS = (1, 2, SCHEMA_VERSION)
DIRECTIONS = ("higher", "lower", "equal")  # equal: any change beyond tolerance is a regression
# What a test entry keeps beside its metrics: settings and commit the figures were measured with, and
# (machine entries) pytest-benchmark's stats of the newest clean measurement.
ABOUT = ("settings", "commit", "timing_stats")


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
    machines: int = 1          # on how many distinct machines those runs were measured
    gated: bool = True         # False: a report-only figure (a ratio shown, never failed on)

    @property
    def one_run(self) -> bool:
        """A noisy figure with no run-to-run spread (one run, no neighbour measured in more): only its
        floor stands for that noise."""
        return self.runs < 2 and self.run_spread == 0 and self.direction != "equal"

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise BaselineError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")


Tests = dict[str, dict[str, Metric]]
About = dict[str, dict]  # test id -> {settings, commit, timing_stats} (ABOUT), each optional


@dataclass
class Machine:
    """Machine-bound metrics of one device identity, with what measured them."""

    device: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    tests: Tests = field(default_factory=dict)
    about: About = field(default_factory=dict)

    def timing(self, test_id: str) -> dict | None:
        return self.about.get(test_id, {}).get("timing_stats")


@dataclass
class Baseline:
    slug: str
    versions: dict = field(default_factory=dict)
    tests: Tests = field(default_factory=dict)              # portable metrics
    machines: dict[str, Machine] = field(default_factory=dict)
    about: About = field(default_factory=dict)              # of the portable figures

    def to_json(self) -> str:
        doc = {"schema_version": SCHEMA_VERSION, "slug": self.slug, "versions": self.versions,
               "tests": _dump(self.tests, self.about),
               "machines": {i: {"device": m.device, "versions": m.versions, "tests": _dump(m.tests, m.about)}
                            for i, m in self.machines.items()}}
        return json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n"

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


def _dump(tests: Tests, about: About) -> dict:
    return {t: {"metrics": {n: asdict(m) for n, m in tests.get(t, {}).items()}, **about.get(t, {})}
            for t in set(tests) | set(about)}


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

def _metrics(doc: dict, portable_default: bool | None) -> dict[str, Metric]:
    out = {}
    for name, m in doc.items():
        floor = m.get("floor", tol.DEFAULT)
        # schema 1 did not say; its exact counts and 0-floor figures were the portable ones
        portable = m["direction"] == "equal" or floor == 0.0 if portable_default is None else portable_default
        out[name] = Metric(**{"floor": floor, "portable": portable, **m})
    return out


def _tests(doc: dict, version: int, portable_default: bool | None) -> tuple[Tests, About]:
    """(metrics, about) of a `tests` object; schema 1 and 2 held the metrics alone per test."""
    tests, about = {}, {}
    for test_id, entry in doc.items():
        test_id = current_test_id(test_id)
        metrics = entry["metrics"] if version >= 3 else entry
        if metrics:
            tests[test_id] = _metrics(metrics, portable_default)
        if version >= 3 and (extra := {k: entry[k] for k in ABOUT if k in entry}):
            about[test_id] = extra
    return tests, about


def _split(tests: Tests) -> tuple[Tests, Tests]:
    portable: Tests = {}
    bound: Tests = {}
    for t, ms in tests.items():
        for n, m in ms.items():
            (portable if m.portable else bound).setdefault(t, {})[n] = m
    return portable, bound


def parse(text: str, path: Path | str = "<baseline>") -> Baseline:
    """Read a baseline document (schema 3, 2, or 1 read as one machine), checked against
    baseline.schema.json; every problem names the file and the field in one line."""
    doc, why = schemas.parse_strict(text)
    if why:
        raise BaselineError(f"{path}: {why}")
    version = doc.get("schema_version") if isinstance(doc, dict) else None
    if type(version) is not int or version not in READS:  # true and 1.0 == 1 in Python and in JSON Schema
        raise BaselineError(f"{path}: schema_version is {version!r}, this suite reads "
                            f"{', '.join(map(str, READS[:-1]))} and {READS[-1]}")
    if why := schemas.problem(doc, "baseline"):
        raise BaselineError(f"{path}: {why}")
    if version == 1:  # one machine, no identity recorded beyond the device dict
        portable, bound = _split(_tests(doc["tests"], 1, None)[0])
        machines = {device_identity(doc["gpu"]): Machine(doc["gpu"], doc["versions"], bound)} if bound else {}
        return Baseline(doc["slug"], doc["versions"], portable, machines)
    machines = {ident: Machine(m["device"], m["versions"], *_tests(m["tests"], version, False))
                for ident, m in doc["machines"].items()}
    tests, about = _tests(doc["tests"], version, True)
    return Baseline(doc["slug"], doc["versions"], tests, machines, about)


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


# ---- writing (the one writer: the gate's --update-baselines and `pagedbench baseline`) ---------

# A second writer waits this long for the first to finish its session end (seconds of file writes)
# before it refuses.
LOCK_WAIT_S = 300.0
LOCK_NAME = ".update-baselines.lock"


def update_lock(baselines_dir: str | Path, wait_s: float = LOCK_WAIT_S) -> filelock.FileLock:
    """The lock a writer holds while it reads, merges and writes baselines/<slug>.json, so that two
    writers of one folder take turns and neither loses the other's tests."""
    folder = Path(baselines_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return filelock.FileLock(str(folder / LOCK_NAME), timeout=wait_s)


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
          about: About | None = None) -> Baseline:
    """Old baseline with the measured tests replaced: portable metrics for every machine, the
    rest under this device's identity. Tests not run this time are kept. `about` (per test: settings,
    commit, timing_stats) replaces what the old baseline said of those tests; timing stats are
    machine-bound, settings and commit are kept on both sides."""
    portable, bound = _split(measured)
    about = about or {}
    shared = {t: {k: v for k, v in a.items() if k != "timing_stats"} for t, a in about.items()}
    tests = {**(old.tests if old else {}), **portable}
    kept_about = {**(old.about if old else {}), **{t: shared[t] for t in portable if shared.get(t)}}
    machines = dict(old.machines) if old else {}
    ident = device_identity(device)
    bound_about = {t: a for t, a in about.items() if a and (t in bound or "timing_stats" in a)}
    if bound or bound_about:
        prior = machines.get(ident) or Machine()
        machines[ident] = Machine({k: v for k, v in device.items() if k != "health"}, versions,
                                  {**prior.tests, **bound}, {**prior.about, **bound_about})
    return Baseline(slug, versions, tests, machines, kept_about)


def about_from_run(results: dict[str, dict], tests: Tests, commit: str = "") -> About:
    """What a baseline keeps beside the metrics of `tests`, taken from their run entries: the commit
    and pytest-benchmark's timing stats (only clean tests are in `tests`: a contaminated timing never
    enters the store)."""
    about: About = {}
    for test_id in tests:
        entry = results.get(test_id, {})
        a = {"commit": commit} if commit else {}
        if entry.get("timing_stats"):
            a["timing_stats"] = entry["timing_stats"]
        if a:
            about[test_id] = a
    return about
