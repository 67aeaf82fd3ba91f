"""A baseline from several separate runs: each metric's value and its run-to-run spread.

One run tells the spread of its rounds; it cannot tell how far a fresh process, a fresh
engine or a fresh machine of the same model moves the figure. Merging N run JSON files
(same slug, same device identity) gives each metric the median of its runs and the
relative spread between them, which the gate's tolerance then covers.

A spread estimated from a handful of runs often comes out too small for one case while its
neighbours show the truth (the H100 kernel case is in docs/hardware-notes.md). So each metric's
run-to-run spread is at least the POOL_QUANTILE of its family's (same test function, same
implementation, same metric).

    python -m pagedbench baseline runs/h100-1.json runs/h100-2.json runs/h100-3.json
"""

from __future__ import annotations

import fnmatch
import statistics
from dataclasses import replace
from pathlib import Path

from pagedbench.errors import PagedBenchError
from pagedbench.gate import baseline_file as bl
from pagedbench.gate.clean_runs import clean_tests
from pagedbench.gate.run_file import load_run  # names the file and field of a bad run JSON

POOL_QUANTILE = 0.75


def combine(samples: list[bl.Metric], floor_spread: float = 0.0) -> bl.Metric:
    """Median value; run_spread = stdev / mean over the runs, at least floor_spread (the family's: a
    case measured in one run takes its neighbours' run-to-run noise); the widest within-run spread."""
    values = [m.value for m in samples]
    return replace(samples[-1], value=statistics.median(values), spread=max(m.spread for m in samples),
                   run_spread=max(run_cv(values), floor_spread), runs=len(samples))


def run_cv(values: list[float]) -> float:
    mean = statistics.fmean(values)
    return statistics.stdev(values) / mean if len(values) > 1 and mean else 0.0


def family(test_id: str, params: dict, metric: str) -> tuple:
    return test_id.split("::")[-1].split("[")[0], str(params.get("impl", "")), metric


def pooled_spreads(samples: dict[str, dict[str, list[bl.Metric]]], params: dict[str, dict]) -> dict[tuple, float]:
    """Per family, the POOL_QUANTILE of its cases' run-to-run spreads."""
    cvs: dict[tuple, list[float]] = {}
    for test_id, metrics in samples.items():
        for name, ms in metrics.items():
            if len(ms) > 1 and not ms[0].portable:
                cvs.setdefault(family(test_id, params.get(test_id, {}), name), []).append(run_cv([m.value for m in ms]))
    return {k: sorted(v)[int(POOL_QUANTILE * (len(v) - 1))] for k, v in cvs.items()}


def split_label(arg) -> tuple[Path, str]:
    """'RUN.json@LABEL' -> (path, label): the machine a run came from, for runs that did not record it
    (Device.machine_id); '' when not given."""
    text = str(arg)
    path, sep, label = text.rpartition("@")
    return (Path(path), label) if sep and label and "/" not in label else (Path(text), "")


def merge_runs(paths: list[Path], tests_glob: str = "*", calibration: bool = False
               ) -> tuple[dict, dict, dict[str, bl.Tests], list[str], dict]:
    """(device, versions, {slug: tests with noise}, skipped, {test: (settings, commit, timing stats)}) from
    run files of one machine kind: settings and commit of the newest run, the timing stats of the median
    one (middle_timing). A path may carry '@LABEL' naming the machine of a run that did not record it.

    Each test goes to its own slug's baseline: on a two-GPU machine (device slug h200) the
    tensor-parallel tests carry h200x2 and the one-GPU tests h200.

    `calibration`: the runs measured one commit on one machine, so a test they failed failed on noise
    (the tolerance it was judged by was too tight), and its clean figures are samples of that noise.
    Contaminated and unstable figures stay out either way."""
    if not paths:
        raise PagedBenchError("no run files given")
    paths, labels = zip(*map(split_label, paths))
    docs = [load_run(p) for p in paths]
    machine_of = [lb or d["gpu"].get("machine_id", "") for d, lb in zip(docs, labels)]
    slug, ident = docs[0].get("slug"), bl.device_identity(docs[0]["gpu"])
    for doc, path in zip(docs[1:], paths[1:]):
        if doc.get("slug") != slug or bl.device_identity(doc["gpu"]) != ident:
            raise PagedBenchError(f"{path}: {doc.get('slug')} / {bl.device_identity(doc['gpu'])!r} differs from "
                                  f"{paths[0]}: {slug} / {ident!r}; merge runs of one machine kind")
    samples: dict[str, dict[str, list[bl.Metric]]] = {}
    params: dict[str, dict] = {}
    slug_of: dict[str, str] = {}
    skipped: list[str] = []
    seen_on: dict[tuple[str, str], set[str]] = {}
    recorded: dict[str, tuple] = {}   # test -> (settings, commit) of its newest run
    timed: dict[str, list[dict]] = {}
    for doc, path, machine in zip(docs, paths, machine_of):
        chosen = {t: e for t, e in doc["tests"].items() if fnmatch.fnmatchcase(t, tests_glob)}
        by_slug, why = clean_tests(chosen, ("passed", "failed") if calibration else ("passed",))
        skipped += [f"{path}: {w}" for w in why]
        for test_slug, slug_tests in by_slug.items():
            for test_id, metrics in slug_tests.items():
                params[test_id], slug_of[test_id] = chosen[test_id].get("params", {}), test_slug
                recorded[test_id] = (params[test_id].get("settings"), doc.get("commit", ""))
                if chosen[test_id].get("timing_stats"):
                    timed.setdefault(test_id, []).append(chosen[test_id]["timing_stats"])
                for name, m in metrics.items():
                    samples.setdefault(test_id, {}).setdefault(name, []).append(m)
                    seen_on.setdefault((test_id, name), set()).update({machine} - {""})
    pooled = pooled_spreads(samples, params)
    tests: dict[str, bl.Tests] = {}
    for t, metrics in samples.items():
        tests.setdefault(slug_of[t], {})[t] = {
            n: replace(combine(ms, pooled.get(family(t, params[t], n), 0.0)), machines=len(seen_on[(t, n)]))
            for n, ms in metrics.items()}
    device = dict(docs[-1]["gpu"])
    probes = [d["gpu"]["speed_probe"] for d in docs if d["gpu"].get("speed_probe")]
    if probes:
        device["speed_probe"] = statistics.median(probes)
    recorded = {t: (*r, middle_timing(timed[t]) if t in timed else None) for t, r in recorded.items()}
    return device, docs[-1].get("versions", {}), tests, skipped, recorded


def middle_timing(stats: list[dict]) -> dict:
    """Of several runs' timing stats, the run whose median time is the median one (the lower middle of
    an even count): a whole measurement, as pytest-benchmark saved it, beside the metrics' medians."""
    return sorted(stats, key=lambda s: s["median"])[(len(stats) - 1) // 2]


def write_baseline(paths: list[Path], baselines_dir: Path, tests_glob: str = "*",
                   calibration: bool = False) -> tuple[list[Path], list[str]]:
    """baselines/<slug>.json for every slug the runs' clean tests carry; ([paths written], notes)."""
    device, versions, by_slug, skipped, recorded = merge_runs(paths, tests_glob, calibration)
    written = []
    for slug, tests in sorted(by_slug.items()):
        path = Path(baselines_dir) / f"{slug}.json"
        commits = {recorded[t][1] for t in tests} - {""}
        with bl.update_lock(baselines_dir):
            bl.write_atomic(path, bl.merge(bl.load(path), slug, device, versions, tests,
                                           {t: recorded[t][0] for t in tests}, max(commits) if len(commits) == 1 else
                                           ",".join(sorted(commits)), {t: recorded[t][2] for t in tests}))
        counts = sorted({m.runs for ms in tests.values() for m in ms.values()})
        skipped.append(f"{slug}: {len(tests)} tests merged from {'/'.join(map(str, counts))} run(s) each")
        alone = sorted(t for t, ms in tests.items() if any(m.one_run for m in ms.values()))
        if alone:
            skipped.append(f"{slug}: {len(alone)} test(s) with figures from one run and no neighbour measured in "
                           "more (their floors alone cover run-to-run noise; merge a second clean run): "
                           + ", ".join(alone))
        written.append(path)
    if not written:
        skipped.append("no clean test in these runs: no baseline written")
    return written, skipped
