"""Is each GPU's baseline fit to gate? Per baseline file: the tests that run there with no figure in
it, figures from one run or one machine (their noise model cannot hold the spread between machines
of one model), and figures whose settings were not recorded or whose code changed since.

A green run is only as good as its baseline: this says where it is not, before a run relies on it.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pagedbench.gate import baseline_file as bl

MIN_RUNS, MIN_MACHINES = 3, 2
# What a benchmark's figures depend on beside its own test module: changes here may move them.
MEASURING = ("pagedbench/engines", "pagedbench/workloads", "pagedbench/kernels", "pagedbench/meters")


@dataclass
class Findings:
    slug: str
    tests: int = 0
    no_baseline: list[str] = field(default_factory=list)
    few_runs: list[str] = field(default_factory=list)        # "test metric (N runs)"
    one_machine: list[str] = field(default_factory=list)     # "test metric (N machines)" (0: not recorded)
    no_settings: list[str] = field(default_factory=list)
    code_changed: list[str] = field(default_factory=list)    # "test (since COMMIT)"

    @property
    def clean(self) -> bool:
        return not (self.no_baseline or self.few_runs or self.one_machine or self.no_settings or self.code_changed)


def collected_ids(slug: str, root: Path) -> list[str] | None:
    """The benchmark ids that run on slug's machines, from pytest's own collection; None if it failed."""
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "--benchmark-only",
                           "-p", "no:cacheprovider", f"--pagedbench-device={slug}", "tests/benchmarks"],
                          cwd=root, capture_output=True, text=True, timeout=600)
    if done.returncode not in (0, 5):
        return None
    return [line.strip() for line in done.stdout.splitlines() if "::" in line and f"[{slug}" in line]


def changed_since(commit: str, paths: list[str], root: Path) -> bool | None:
    """Whether the content of any of paths changed between commit and HEAD; None when git cannot tell.
    A file moved with its imports edited (90 % or more the same) is not a change of what it measures."""
    done = subprocess.run(["git", "diff", "-M90%", "--name-status", commit, "HEAD"],
                          cwd=root, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return None
    for line in done.stdout.splitlines():
        status, *names = line.split("\t")
        if status.startswith("R") or not names:
            continue
        if any(names[-1] == p or names[-1].startswith(p.rstrip("/") + "/") for p in paths):
            return True
    return False


def audit(base: bl.Baseline, ids: list[str] | None, root: Path) -> Findings:
    f = Findings(base.slug)
    recorded: dict[str, dict[str, bl.Metric]] = {t: dict(ms) for t, ms in base.tests.items()}
    settings, commits = {}, {}
    for machine in base.machines.values():
        for t, ms in machine.tests.items():
            recorded.setdefault(t, {}).update(ms)
        settings.update(machine.settings)
        commits.update(machine.commits)
    f.tests = len(recorded)
    f.no_baseline = sorted(set(ids or ()) - set(recorded))
    for t, ms in sorted(recorded.items()):
        for name, m in sorted(ms.items()):
            if m.direction == "equal" or not m.gated:
                continue  # exact counts need no noise model; ratios are not gated
            if m.runs < MIN_RUNS:
                f.few_runs.append(f"{t} {name} ({m.runs} run{'s' * (m.runs != 1)})")
            if m.machines < MIN_MACHINES:
                f.one_machine.append(f"{t} {name} ({m.machines or 'machine not recorded'}"
                                     f"{' machine' if m.machines == 1 else ''})")
        if t not in settings:
            f.no_settings.append(t)
        if t in commits:
            module = t.split("::")[0]
            if changed_since(commits[t].split(",")[-1], [module, *MEASURING], root):
                f.code_changed.append(f"{t} (since {commits[t]})")
    return f


def report_lines(f: Findings, limit: int = 8) -> list[str]:
    out = [f"{f.slug}: {f.tests} test(s) in the baseline" + (": fit to gate" if f.clean else "")]
    for title, items in (("tests that run here with no baseline", f.no_baseline),
                         (f"figures from fewer than {MIN_RUNS} runs", f.few_runs),
                         (f"figures from fewer than {MIN_MACHINES} machines", f.one_machine),
                         ("tests with no settings recorded (compared, but a changed default goes unseen)",
                          f.no_settings),
                         ("tests whose code changed since their figures were recorded", f.code_changed)):
        if items:
            out.append(f"  {len(items)} {title}:")
            out += [f"    {x}" for x in items[:limit]]
            if len(items) > limit:
                out.append(f"    ... and {len(items) - limit} more")
    return out
