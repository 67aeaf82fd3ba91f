"""The change-point candidates, run on synthetic series with known steps, and the table they give.

    python -m pagedbench detectors [--trials 60] [--seed 0] [--readme README.md]

Each candidate sees the same seeded series: stepped ones (one step of 3-10 %, at least 3x the
noise, 1-5 % CV) and step-free ones. A step counts as found within 2 runs of where it was put.
`--readme` rewrites the table between <!-- detectors:start --> and <!-- detectors:end -->.

Apache Otava (apache-otava 0.8.0, the `compare-detectors` extra) pins numpy 2.2.*, scipy <1.17 and
ruamel.yaml 0.18.16 and pulls in BigQuery, Postgres and Slack clients, so it is no dependency of
the suite: its rows appear where it is importable, e.g. a throwaway venv holding only it and ruptures:

    python3.11 -m venv /tmp/otava && /tmp/otava/bin/pip install apache-otava==0.8.0 ruptures
    PYTHONPATH=. /tmp/otava/bin/python -m pagedbench detectors --trials 60 --readme README.md
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from importlib import metadata

from pagedbench.errors import PagedBenchError
from pagedbench.history import changepoint
from pagedbench.history.changepoint import Step

MARKERS = ("<!-- detectors:start -->", "<!-- detectors:end -->")
CHOSEN = "ruptures PELT (l2)"
Detector = Callable[[list[float]], list[Step]]


def binseg(values: list[float]) -> list[Step]:
    """Binary segmentation with PELT's cost and penalty (greedy, faster, can miss close steps)."""
    return changepoint.segment(values, "Binseg")


def windowed_median(values: list[float], window: int = 5, threshold: float = 0.05) -> list[Step]:
    """PyTorch's vLLM dashboard rule: the two latest points both off the trailing median by more than
    threshold. Applied at every position, it reports where that first happens after a quiet stretch."""
    steps = []
    i = window
    while i < len(values) - 1:
        ref = statistics.median(values[i - window:i])
        if all(abs(v - ref) / ref > threshold for v in values[i:i + 2]):
            steps.append(Step(i, ref, statistics.median(values[i:i + window]), 0.0))
            i += window
        else:
            i += 1
    return steps


def _otava_steps(values: list[float], change_points) -> list[Step]:
    # Otava's index is the first point of the new level, as ruptures' is; levels are reported the
    # suite's way (medians, significance in standard errors) so the rows read alike.
    return changepoint.levels(values, [int(cp.index) for cp in change_points] + [len(values)],
                              changepoint.noise_of(values) or 1e-12)


def otava_hunter(max_pvalue: float = 0.001, window_len: int = 50) -> Detector:
    """Otava's default analysis: E-Divisive in sliding windows, weak points merged by a t-test."""
    def detect(values: list[float]) -> list[Step]:
        from otava.analysis import compute_change_points
        # A list, as Otava's own Series passes: 0.8.0's detector skips the window slicing for an
        # ndarray and then shifts its indices past the end of the series.
        found, _ = compute_change_points(list(values), window_len=window_len, max_pvalue=max_pvalue)
        return _otava_steps(values, found)
    return detect


def otava_original(max_pvalue: float = 0.001, permutations_seed: int = 1) -> Detector:
    """Matteson and James' E-Divisive with its permutation test (Otava's --orig-edivisive)."""
    def detect(values: list[float]) -> list[Step]:
        from otava.analysis import compute_change_points_orig
        found, _ = compute_change_points_orig(list(values), max_pvalue=max_pvalue, seed=permutations_seed)
        return _otava_steps(values, found)
    return detect


DETECTORS: dict[str, Detector] = {
    CHOSEN: changepoint.pelt,
    "ruptures BinSeg (l2)": binseg,
    "ruptures PELT (rbf)": lambda v: changepoint.pelt(v, model="rbf", penalty_scale=1.0),
    "windowed median, 5 % (the PyTorch dashboard's rule)": windowed_median,
}
OTAVA: dict[str, Detector] = {
    "Otava E-Divisive, t-test merge (its defaults: window 50, p 0.001)": otava_hunter(),
    "Otava E-Divisive, t-test merge (p 0.0001)": otava_hunter(max_pvalue=0.0001),
    "Otava original E-Divisive (100 permutations, p 0.001)": otava_original(),
}


def otava_version() -> str | None:
    try:
        import otava.analysis  # noqa: F401  (installed but broken counts as absent)
        return metadata.version("apache-otava")
    except Exception:
        return None


def candidates() -> dict[str, Detector]:
    return {**DETECTORS, **(OTAVA if otava_version() else {})}


def synthetic(n: int, cv: float, step: float, at: int | None, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [100.0 * (1 + (step if at is not None and i >= at else 0.0)) * (1 + rng.gauss(0, cv)) for i in range(n)]


def stepped_series(trials: int, n: int, seed: int) -> list[tuple[list[float], int]]:
    """Series with one step of 3-10 %, at least 3x the noise (CV 1-3 % then), at a random place
    with at least 6 runs on either side."""
    rng = random.Random(seed)
    out = []
    for t in range(trials):
        size = rng.uniform(0.03, 0.10)
        cv = rng.choice([c for c in (0.01, 0.02, 0.03, 0.05) if size >= 3 * c])
        at = rng.randrange(6, n - 6)
        out.append((synthetic(n, cv, size * rng.choice((-1, 1)), at, seed * 1000 + t), at))
    return out


def flat_series(trials: int, n: int, seed: int) -> list[list[float]]:
    rng = random.Random(seed + 1)
    return [synthetic(n, rng.choice((0.01, 0.02, 0.03, 0.05)), 0.0, None, seed * 1000 + 500 + t) for t in range(trials)]


def compare(trials: int = 40, n: int = 30, seed: int = 0, detectors: dict[str, Detector] | None = None) -> list[dict]:
    """Per detector: steps found within 2 points, extra steps on stepped series, and step-free
    series in which it found any step."""
    stepped, flat = stepped_series(trials, n, seed), flat_series(trials, n, seed)
    rows = []
    for name, detect in (detectors or candidates()).items():
        found = extra = 0
        for values, at in stepped:
            steps = detect(values)
            hit = [s for s in steps if abs(s.index - at) <= 2]
            found += bool(hit)
            extra += len(steps) - min(len(hit), 1)
        rows.append({"detector": name, "found": found, "stepped": trials, "extra": extra,
                     "false_series": sum(bool(detect(v)) for v in flat), "flat": trials})
    return rows


def table(rows: list[dict], trials: int, n: int, seed: int) -> str:
    from pagedbench.report import md_table
    body = md_table(["detector", "steps found (±2 runs)", "extra steps", "step-free series with a step"],
                    [[r["detector"] + (" — chosen" if r["detector"] == CHOSEN else ""), f"{r['found']} / {r['stepped']}",
                      r["extra"], f"{r['false_series']} / {r['flat']}"] for r in rows])
    versions = f"ruptures {metadata.version('ruptures')}" + (f", apache-otava {v}" if (v := otava_version()) else "")
    return (f"{body}\n\n{trials} stepped and {trials} step-free series of {n} runs, seed {seed}; {versions} "
            f"(`python -m pagedbench detectors --trials {trials} --seed {seed}`).")


def write_readme(path, text: str) -> bool:
    """Replace the README's detector table; refuses a table without Otava's rows."""
    from pathlib import Path

    from pagedbench.report.readme import replace_block
    if not otava_version():
        raise PagedBenchError("the README's table has Otava's rows: run this where apache-otava imports "
                              "(see pagedbench/history/detectors.py for a throwaway venv)")
    path = Path(path)
    old = path.read_text()
    new = replace_block(old, MARKERS, text, path)
    if new != old:
        path.write_text(new)
    return new != old
