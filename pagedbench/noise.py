"""A baseline from several separate runs: each metric's value and its run-to-run spread.

One run tells the spread of its rounds; it cannot tell how far a fresh process, a fresh
engine or a fresh machine of the same model moves the figure. Merging N run JSON files
(same slug, same device identity) gives each metric the median of its runs and the
relative spread between them, which the gate's tolerance then covers.

    python -m pagedbench baseline runs/h100-1.json runs/h100-2.json runs/h100-3.json
"""

from __future__ import annotations

import json
import statistics
from dataclasses import replace
from pathlib import Path

from . import baseline as bl
from .errors import PagedBenchError
from .gate import clean_tests


def _load(path: Path) -> dict:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PagedBenchError(f"{path}: cannot read a run JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("tests"), dict) or not isinstance(doc.get("gpu"), dict):
        raise PagedBenchError(f"{path}: not a run JSON written by --metrics-json (no 'tests'/'gpu' objects)")
    return doc


def combine(samples: list[bl.Metric]) -> bl.Metric:
    """Median value; run_spread = stdev / mean over the runs; the widest within-run spread."""
    values = [m.value for m in samples]
    mean = statistics.fmean(values)
    run_spread = statistics.stdev(values) / mean if len(values) > 1 and mean else 0.0
    return replace(samples[-1], value=statistics.median(values), spread=max(m.spread for m in samples),
                   run_spread=run_spread, runs=len(samples))


def merge_runs(paths: list[Path]) -> tuple[str, dict, dict, bl.Tests, list[str]]:
    """(slug, device, versions, tests with noise, skipped) from run files of one machine kind."""
    if not paths:
        raise PagedBenchError("no run files given")
    docs = [_load(p) for p in paths]
    slug, ident = docs[0].get("slug"), bl.device_identity(docs[0]["gpu"])
    for doc, path in zip(docs[1:], paths[1:]):
        if doc.get("slug") != slug or bl.device_identity(doc["gpu"]) != ident:
            raise PagedBenchError(f"{path}: {doc.get('slug')} / {bl.device_identity(doc['gpu'])!r} differs from "
                                  f"{paths[0]}: {slug} / {ident!r}; merge runs of one machine kind")
    samples: dict[str, dict[str, list[bl.Metric]]] = {}
    skipped: list[str] = []
    for doc, path in zip(docs, paths):
        by_slug, why = clean_tests(doc["tests"])
        skipped += [f"{path}: {w}" for w in why]
        for test_id, metrics in by_slug.get(slug, {}).items():
            for name, m in metrics.items():
                samples.setdefault(test_id, {}).setdefault(name, []).append(m)
    tests = {t: {n: combine(ms) for n, ms in metrics.items()} for t, metrics in samples.items()}
    return slug, docs[-1]["gpu"], docs[-1].get("versions", {}), tests, skipped


def write_baseline(paths: list[Path], baselines_dir: Path) -> tuple[Path, list[str]]:
    slug, device, versions, tests, skipped = merge_runs(paths)
    path = Path(baselines_dir) / f"{slug}.json"
    bl.write_atomic(path, bl.merge(bl.load(path), slug, device, versions, tests))
    counts = sorted({m.runs for ms in tests.values() for m in ms.values()})
    return path, skipped + [f"{len(tests)} tests merged from {'/'.join(map(str, counts))} run(s) each"]
