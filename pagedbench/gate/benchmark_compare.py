"""pytest-benchmark's view of the baseline store: its timing stats in, a saved run out.

baselines/<slug>.json is the suite's one store. pytest-benchmark keeps its own history in
saved runs (<storage>/<machine id>/NNNN_<name>.json) and `--benchmark-compare` reads the newest
of them. So a session's timing stats go into the run JSON and from there, with the metrics and
through the same writer, into the baseline (per test, under the machine identity that measured
them); and `--benchmark-compare` with no run named and no storage given is pointed at a saved
run written from the baselines into a temporary folder (`compare_storage`).

`import_stored_runs` reads the layout the suite used before (baselines/<slug>/<machine id>/...)
once, into the store.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

from pagedbench import schemas
from pagedbench.errors import PagedBenchError
from pagedbench.gate import baseline_file as bl
from pagedbench.gate.run_file import current_test_id

SAVE_NAME = "baselines"  # the saved run's name: --benchmark-compare's table shows it beside each timing


def timing_stats(benchmark) -> dict | None:
    """pytest-benchmark's stats of a benchmark fixture's last measurement, as it saves them; None when
    nothing was measured (no fixture, no round, --benchmark-disable)."""
    meta = getattr(benchmark, "stats", None)
    if not meta or not getattr(meta, "stats", None):
        return None
    return {**meta.stats.as_dict(), "iterations": meta.iterations}


def stored_timings(baseline: bl.Baseline, identity: str) -> dict[str, tuple[str, dict]]:
    """test id -> (identity, stats): this identity's timing where it has one, else another identity's
    (sorted by name), so a machine of a new kind still sees how long the stored run took."""
    found: dict[str, tuple[str, dict]] = {}
    others = sorted(i for i in baseline.machines if i != identity)
    for ident in [identity, *others] if identity in baseline.machines else others:
        for test_id, stats in baseline.machines[ident].timings.items():
            found.setdefault(test_id, (ident, stats))
    return found


def saved_run(baselines: list[bl.Baseline], identity: str) -> dict:
    """A pytest-benchmark saved run holding the stored timings of these baselines for this identity."""
    import pytest_benchmark

    benchmarks, sources = [], set()
    for base in baselines:
        for test_id, (ident, stats) in sorted(stored_timings(base, identity).items()):
            sources.add(ident)
            benchmarks.append({"group": None, "name": test_id.split("::")[-1], "fullname": test_id, "params": None,
                               "param": None, "extra_info": {"identity": ident}, "options": {}, "stats": dict(stats)})
    return {"machine_info": {"pagedbench_store": [f"baselines/{b.slug}.json" for b in baselines],
                             "identities": sorted(sources)},
            "commit_info": {}, "benchmarks": benchmarks,
            "datetime": dt.datetime.now(dt.timezone.utc).isoformat(), "version": pytest_benchmark.__version__}


def compare_storage(baselines_dir: Path, slug: str, identity: str) -> Path:
    """A temporary pytest-benchmark storage whose one saved run, under this machine id, holds the stored
    timings of baselines/<slug>.json and of its multi-GPU setups (<slug>x2.json, ...). The caller removes it."""
    from pytest_benchmark.utils import get_machine_id

    paths = [Path(baselines_dir) / f"{slug}.json", *sorted(Path(baselines_dir).glob(f"{slug}x[0-9]*.json"))]
    baselines = [b for b in map(bl.load, paths) if b is not None]
    try:  # under the working directory: pytest-benchmark names a storage by its path relative to it
        folder = Path(tempfile.mkdtemp(prefix=".pagedbench-compare-", dir=Path.cwd()))
    except OSError:
        folder = Path(tempfile.mkdtemp(prefix="pagedbench-compare-"))
    (folder / get_machine_id()).mkdir()
    text = json.dumps(saved_run(baselines, identity), indent=4, ensure_ascii=True)
    (folder / get_machine_id() / f"0001_{SAVE_NAME}.json").write_text(text)
    return folder


def wants_store(option, storage_default: str) -> bool:
    """--benchmark-compare with no run named, no --benchmark-storage and nothing saved this session: compare
    with the baselines. A user who names a run, a storage or a save compares with pytest-benchmark's own history."""
    return (option.benchmark_compare is True and option.benchmark_storage == storage_default
            and not option.benchmark_save and not option.benchmark_autosave)


# ---- the layout before the one store, read once ----------------------------------------------

def _read_saved(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())  # pytest-benchmark writes Infinity in extra_info; only stats are kept
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PagedBenchError(f"{path}: not a readable pytest-benchmark run ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list) \
            or not isinstance(doc.get("machine_info"), dict):
        raise PagedBenchError(f"{path}: not a pytest-benchmark saved run (no 'benchmarks' or 'machine_info')")
    for i, bench in enumerate(doc["benchmarks"]):
        if why := schemas.problem(bench.get("stats"), "stats", ("benchmarks", i, "stats")):
            raise PagedBenchError(f"{path}: {why}")
    return doc


def import_saved(baseline: bl.Baseline | None, slug: str, saved: dict) -> tuple[bl.Baseline, int]:
    """baseline with the timings of one saved run added under the identity of the device its machine_info
    records (the suite put it there); contaminated timings are left out. (baseline, timings imported)."""
    device = saved["machine_info"].get("gpu") or {}
    versions = saved["machine_info"].get("software") or {}
    timings = {current_test_id(b["fullname"]): b["stats"] for b in saved["benchmarks"]
               if not (b.get("extra_info") or {}).get("contaminated")}
    if baseline is not None and (known := baseline.machine(bl.device_identity(device))):
        device, versions = known.device, known.versions  # the metrics' own device stays as it was recorded
    base = bl.merge(baseline, slug, device, versions, {}, timings=timings)
    base.versions = baseline.versions if baseline is not None else versions  # no new figure was written
    return base, len(timings)


def import_stored_runs(folder: Path, baselines_dir: Path) -> list[str]:
    """Per machine folder of an old storage folder (baselines/<slug>/<machine id>/), its newest saved run's
    timings into baselines/<slug>.json; what was done, one line each."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PagedBenchError(f"{folder}: not a folder of pytest-benchmark runs")
    slug, notes = folder.name, []
    path = Path(baselines_dir) / f"{slug}.json"
    with bl.update_lock(baselines_dir):
        base = bl.load(path)
        for machine in sorted(p for p in folder.iterdir() if p.is_dir()):
            runs = sorted(machine.glob("[0-9][0-9][0-9][0-9]_*.json"))
            if runs:
                base, n = import_saved(base, slug, _read_saved(runs[-1]))
                notes.append(f"{path}: {n} timings from {runs[-1]}")
        if base is not None:
            bl.write_atomic(path, base)
    return notes
