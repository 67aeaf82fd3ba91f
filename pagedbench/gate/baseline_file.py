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

import fnmatch
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
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
from pagedbench.metrics.metric import Metric

SCHEMA_VERSION = 3
READS = (1, 2, SCHEMA_VERSION)


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
    timings: dict[str, dict] = field(default_factory=dict)  # pytest-benchmark's stats of the newest clean run

    def timing(self, test_id: str) -> dict | None:
        return self.timings.get(test_id)

    def entries(self) -> dict:
        """The tests object of the file: per test its metrics and what measured them."""
        out = {}
        for t in sorted(set(self.tests) | set(self.settings) | set(self.commits) | set(self.timings)):
            out[t] = {"metrics": _dump(self.tests.get(t, {}))}
            for key, held in (("settings", self.settings), ("commit", self.commits), ("timing_stats", self.timings)):
                if held.get(t) is not None:
                    out[t][key] = held[t]
        return out


@dataclass
class Baseline:
    slug: str
    versions: dict = field(default_factory=dict)
    tests: Tests = field(default_factory=dict)              # portable metrics
    machines: dict[str, Machine] = field(default_factory=dict)

    def to_json(self) -> str:
        doc = {"schema_version": SCHEMA_VERSION, "slug": self.slug, "versions": self.versions,
               "tests": {t: {"metrics": _dump(ms)} for t, ms in self.tests.items()},
               "machines": {i: {"device": m.device, "versions": m.versions, "tests": m.entries()}
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


def _dump(metrics: dict[str, Metric]) -> dict:
    return {n: asdict(m) for n, m in metrics.items()}


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
        # machines: 0 when the file did not record it
        out[name] = Metric(**{"floor": floor, "portable": portable, "machines": 0, **m})
    return out


def _tests(doc: dict, version: int, portable_default: bool | None) -> Tests:
    """The metrics of a `tests` object; schema 1 and 2 held them alone per test, schema 3 under 'metrics'."""
    return {current_test_id(t): _metrics(entry["metrics"] if version >= 3 else entry, portable_default)
            for t, entry in doc.items() if (entry["metrics"] if version >= 3 else entry)}


def _machine(m: dict, version: int) -> Machine:
    if version >= 3:
        held = {key: {current_test_id(t): e[key] for t, e in m["tests"].items() if key in e}
                for key in ("settings", "commit", "timing_stats")}
        return Machine(m["device"], m["versions"], _tests(m["tests"], version, False), held["settings"],
                       held["commit"], held["timing_stats"])
    # schema 2 kept settings and commits beside the tests, keyed by test id
    return Machine(m["device"], m["versions"], _tests(m["tests"], version, False),
                   {current_test_id(t): v for t, v in m.get("settings", {}).items()},
                   {current_test_id(t): v for t, v in m.get("commits", {}).items()})


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
        portable, bound = _split(_tests(doc["tests"], 1, None))
        machines = {device_identity(doc["gpu"]): Machine(doc["gpu"], doc["versions"], bound)} if bound else {}
        return Baseline(doc["slug"], doc["versions"], portable, machines)
    machines = {ident: _machine(m, version) for ident, m in doc["machines"].items()}
    return Baseline(doc["slug"], doc["versions"], _tests(doc["tests"], version, True), machines)


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


def drop(base: Baseline, pattern: str) -> tuple[Baseline, list[str]]:
    """base without the tests whose id matches the glob (figures of a workload the code no longer
    runs: compared, they would judge today's workload by another's numbers); (new baseline, dropped)."""
    match = lambda t: fnmatch.fnmatchcase(t, pattern)  # noqa: E731
    gone = sorted({t for t in base.tests if match(t)} | {t for m in base.machines.values()
                                                         for t in (*m.tests, *m.settings, *m.timings) if match(t)})
    keep = lambda d: {t: v for t, v in d.items() if not match(t)}  # noqa: E731
    machines = {i: replace(m, tests=keep(m.tests), settings=keep(m.settings), commits=keep(m.commits),
                           timings=keep(m.timings)) for i, m in base.machines.items()}
    return replace(base, tests=keep(base.tests), machines=machines), gone


def merge(old: Baseline | None, slug: str, device: dict, versions: dict, measured: Tests,
          settings: dict[str, list] | None = None, commit: str = "",
          timings: dict[str, dict | None] | None = None) -> Baseline:
    """Old baseline with the measured tests replaced: portable metrics for every machine, the
    rest under this device's identity, with the settings and commit they were measured with and
    pytest-benchmark's timing stats. Tests not run this time are kept, and so is the timing of a
    test measured this time without one."""
    portable, bound = _split(measured)
    ident = device_identity(device)
    tests = dict(old.tests) if old else {}
    tests.update(portable)
    machines = dict(old.machines) if old else {}
    prior = machines.get(ident) or Machine()
    kept = {**prior.tests, **bound}
    recorded_settings = {t: v for t, v in prior.settings.items() if t not in measured}
    recorded_settings.update({t: settings[t] for t in measured if settings and settings.get(t) is not None})
    commits = {t: v for t, v in prior.commits.items() if t not in measured}
    commits.update({t: commit for t in measured if commit})
    timed = {**prior.timings, **{t: v for t, v in (timings or {}).items() if v is not None}}
    if kept or recorded_settings or commits or timed:
        machines[ident] = Machine({k: v for k, v in device.items() if k != "health"}, versions, kept,
                                  recorded_settings, commits, timed)
    return Baseline(slug, versions, tests, machines)
