"""A machine's runs over time: each metric's series and the steps in it.

    python -m pagedbench history DIR [-k SUBSTRING] [--metric NAME] [--plots OUT]

DIR holds run JSON files (--metrics-json output), e.g. history/<slug>/ kept by the GPU workflow or
reports/<slug>/runs/. Runs are ordered by their start time; only passed, uncontaminated results
enter a series, and exact counts are left out (a change there fails the gate outright). Beside
every point stand the versions that measured it, so a step can be read against what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pagedbench.errors import PagedBenchError
from pagedbench.gate.run_file import load_run  # validates the run schema; names the file on a bad one
from pagedbench.history import changepoint


@dataclass(frozen=True)
class Point:
    started: str
    value: float
    versions: dict
    commit: str
    source: str


@dataclass
class Series:
    test_id: str
    metric: str
    unit: str
    direction: str
    points: list[Point] = field(default_factory=list)

    @property
    def tier(self) -> str:
        return self.test_id.split("::")[0].rsplit("/", 1)[-1].removeprefix("test_").removesuffix(".py")

    def steps(self) -> list[changepoint.Step]:
        return changepoint.pelt([p.value for p in self.points])


def load_runs(folder: Path) -> list[tuple[Path, dict]]:
    paths = sorted(Path(folder).rglob("*.json"))
    if not paths:
        raise PagedBenchError(f"{folder}: no run JSON files (write them with --metrics-json)")
    runs = [(p, load_run(p, "history")) for p in paths]
    slugs = {r["slug"] for _, r in runs}
    if len(slugs) > 1:
        raise PagedBenchError(f"{folder}: runs of several devices ({', '.join(sorted(slugs))}): one folder per slug")
    return sorted(runs, key=lambda pr: (pr[1].get("started") or "", str(pr[0])))


def collect(runs: list[tuple[Path, dict]], k: str | None = None, metric: str | None = None) -> list[Series]:
    found: dict[tuple[str, str], Series] = {}
    for path, run in runs:
        for test_id, entry in run["tests"].items():
            if entry.get("outcome") != "passed" or entry.get("contaminated") or (k and k not in test_id):
                continue
            for name, m in entry.get("metrics", {}).items():
                # Exact figures (and, in runs of before the portable flag, the 0-floor derived ones) never drift.
                exact = m.get("direction") == "equal" or m.get("portable") or m.get("floor") == 0.0
                if (metric and name != metric) or exact:
                    continue
                s = found.setdefault((test_id, name), Series(test_id, name, m.get("unit", ""), m.get("direction", "")))
                s.points.append(Point(run.get("started") or "", float(m["value"]), run.get("versions", {}),
                                      run.get("commit", ""), path.name))
    return [found[k] for k in sorted(found)]


def changed_versions(before: Point, after: Point) -> str:
    keys = sorted(set(before.versions) | set(after.versions))
    diffs = [f"{k} {before.versions.get(k, '-')} -> {after.versions.get(k, '-')}"
             for k in keys if before.versions.get(k) != after.versions.get(k)]
    if before.commit != after.commit and before.commit and after.commit:
        diffs.append(f"suite {before.commit} -> {after.commit}")
    return ", ".join(diffs) or "no version changed"


def describe(s: Series) -> list[str]:
    values = ", ".join(f"{p.value:,.4g}" for p in s.points)
    lines = [f"{s.test_id} {s.metric} [{s.unit}, {s.direction} is better]: {len(s.points)} runs: {values}"]
    for step in s.steps():
        before, after = s.points[step.index - 1], s.points[step.index]
        worse = (step.size < 0) == (s.direction == "higher")
        lines.append(f"  step at run {step.index + 1} ({after.started or after.source}): {step.before:,.4g} -> "
                     f"{step.after:,.4g} ({100 * step.size:+.1f} %, {'worse' if worse else 'better'}), "
                     f"significance {step.significance:.1f}; {changed_versions(before, after)}")
    return lines


def plot(series: list[Series], out_dir: Path, max_lines: int = 12) -> list[Path]:
    """One PNG per tier: each series relative to its first run, its steps marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for tier in sorted({s.tier for s in series}):
        # Speed figures only (memory in GiB has its own report section); series with steps first,
        # then the ones that moved most.
        chosen = [s for s in series if s.tier == tier and len(s.points) > 1 and s.unit not in ("GiB", "bytes")]
        spread = lambda s: (max(p.value for p in s.points) - min(p.value for p in s.points)) / (s.points[0].value or 1)  # noqa: E731
        chosen = sorted(chosen, key=lambda s: (not s.steps(), -spread(s), s.test_id))[:max_lines]
        if not chosen:
            continue
        fig, ax = plt.subplots(figsize=(9, 4.5))
        for s in chosen:
            base = s.points[0].value or 1.0
            ys = [100 * (p.value / base - 1) for p in s.points]
            (line,) = ax.plot(range(1, len(ys) + 1), ys, marker="o", lw=1, ms=3,
                              label=f"{s.test_id.split('::')[-1]} {s.metric}")
            for step in s.steps():
                ax.axvline(step.index + 0.5, color=line.get_color(), ls="--", lw=0.8)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("run (oldest first)")
        ax.set_ylabel("% against the first run")
        ax.set_title(f"{tier}: history, steps dashed")
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)
        fig.tight_layout()
        path = out_dir / f"history_{tier}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
