"""Find the commit that made a benchmark slower: `git bisect run` with the gate as the oracle.

    python -m pagedbench bisect --good REV --bad REV [--repo DIR] -- <pytest args>

The good revision is measured first and its run becomes a throwaway baseline (a selection that
measures no metric stops here); the bad revision is then shown to be bad, and each bisect step runs
the same pytest selection against the baseline, with the gate's confirm-before-fail: exit 0 good,
1 bad (a confirmed regression or a failed assertion), 125 skip (the step does not collect, start
or run, or it gated no metric: a pass that compared nothing says nothing). Each verdict gives its
figures: metric, value, baseline, change and threshold. It bisects a detached worktree, so the
checkout in use is never touched. Steps run with
--trust-machine: both sides are measured on this machine, one after the other, so a busy machine
must not turn the comparison off; instead a run too noisy to show any slowdown (a higher-is-better
figure with a noise band of 100 % or more) is a skip, and such a good end stops the bisect, rather
than a wrong "good" sending the search the wrong way. To bisect a list of vLLM wheels with the suite fixed, see
bisect_wheels.py: it shares the oracle and the baseline step with this.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pagedbench.errors import PagedBenchError
from pagedbench.gate import tolerance as tol

HERE = Path(__file__).resolve().parents[2]  # the folder holding this checkout's pagedbench
NO_TESTS = 5  # pytest's exit status when the selection holds no test
VERDICTS = {0: "good", 1: "bad"}  # any other pytest exit (no tests, usage error, crash) is 125: skip


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise PagedBenchError(f"git {' '.join(args)} failed in {cwd}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def run_json(baselines: Path) -> Path:
    """Where a step's run JSON goes: beside the baselines folder, whose every file names a device."""
    return baselines.with_name("step-run.json")


def pytest_command(baselines: Path, pytest_args: list[str], python: str = sys.executable) -> list[str]:
    # --compare-other-settings: a commit that changed a setting is a suspect like any other.
    return [python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--benchmark-only", "--trust-machine",
            "--compare-other-settings",
            f"--baselines-dir={baselines}", f"--metrics-json={run_json(baselines)}", *pytest_args]


def read_run(path: Path) -> dict:
    """A step's run JSON, or {} when pytest wrote none: the verdict then rests on its exit status."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def blind_spots(run: dict) -> list[str]:
    """Figures in which no slowdown could show: higher-is-better ones with a noise band of 100 % or more
    (seen on a 2-core machine shared with other vLLM runs) and those the gate left ungated as two-mode.
    A pass says nothing about them; strict, since one wrong "good" sends the search the wrong way."""
    found = []
    for test_id, entry in run.get("tests", {}).items():
        found += [f"{test_id} {name} (two modes, not gated)" for name in entry.get("unstable", {})]
        for name, m in entry.get("metrics", {}).items():
            band = tol.band(m.get("floor", 0.0), (m.get("spread", 0.0),), m.get("run_spread", 0.0))
            if m.get("direction") == "higher" and band >= 1.0:
                found.append(f"{test_id} {name} ±{100 * band:.0f} %")
    return found


GATED = ("ok", "regressed", "improved")  # a comparison with a baseline figure and a tolerance band


def _comparisons(run: dict) -> list[dict]:
    return [c for entry in run.get("tests", {}).values() for c in entry.get("comparisons", []) if isinstance(c, dict)]


def gated(run: dict) -> list[dict]:
    """The comparisons of a run that held a figure against the baseline; only these can show a slowdown.
    (Counted from the comparisons: a bisected revision's own gate may not write the 'gated' count.)"""
    return [c for c in _comparisons(run) if c.get("status") in GATED and c.get("change") is not None]


def measured(run: dict) -> int:
    """How many metrics the passed, clean tests of a run recorded (what a baseline takes from it)."""
    return sum(len(e.get("metrics", {})) for e in run.get("tests", {}).values()
               if e.get("outcome", "passed") == "passed" and not e.get("contaminated"))


def figures(c: dict) -> str:
    """One comparison in figures: test, metric, value against the baseline, change and threshold."""
    unit = f" {c['unit']}" if c.get("unit") else ""
    tol_pct = f", threshold ±{100 * c['tolerance']:.1f} %" if isinstance(c.get("tolerance"), (int, float)) else ""
    return (f"{c.get('test_id', '?').rsplit('::', 1)[-1]} {c.get('metric')} {c.get('now'):,.4g}{unit} "
            f"vs {c.get('baseline'):,.4g}{unit} ({100 * c['change']:+.1f} %{tol_pct})")


def regressions(run: dict) -> list[str]:
    return [figures(c) for c in gated(run) if c.get("status") == "regressed"]


def step_verdict(returncode: int, run_path: Path) -> tuple[int, str]:
    """git bisect's exit code for a step (0 good, 1 bad, 125 skip) and why, in figures: pytest's exit status,
    but a pass that gated no metric, or one too noisy to have shown a slowdown, is a skip, not a good step."""
    run = read_run(run_path)
    held = gated(run)
    if returncode == 0 and (blind := blind_spots(run)):
        return 125, f"skip (passed, but too noisy to show a slowdown: {blind[0]})"
    if returncode == 0 and not held:
        return 125, (f"skip (pytest exit 0, but no metric was compared with the good end's baseline: "
                     f"{measured(run)} measured, 0 gated)")
    outcome = returncode if returncode in VERDICTS else 125
    if outcome == 1:
        worse = regressions(run)
        return 1, f"bad (pytest exit 1{': ' if worse else ''}{'; '.join(worse)})"
    if outcome == 0:
        worst = max(held, key=_badness)
        return 0, f"good (pytest exit 0: {len(held)} metric(s) gated, nearest to a regression: {figures(worst)})"
    return 125, f"skip (pytest exit {returncode})"


def _badness(c: dict) -> float:
    """How far toward a regression a comparison went, in units of its threshold (negative: improved)."""
    change = c["change"] if c.get("direction") != "higher" else -c["change"]
    if c.get("direction") == "equal":
        change = abs(change)
    return change / c["tolerance"] if c.get("tolerance") else change


def oracle_env(*path: Path) -> dict:
    """The environment a step's pytest runs in: these folders first on the import path (the tree under
    test, a step's installed wheel) so they win over what the environment has installed."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in path)}


def measure_baseline(what: str, baselines: Path, pytest_args: list[str], cwd: Path, env: dict,
                     python: str = sys.executable, log=lambda line: None) -> None:
    """Record the good end as a throwaway baseline; one measurement, since nothing is compared yet."""
    record = pytest_command(baselines, pytest_args, python) + ["--update-baselines", "--confirm-runs=0"]
    done = subprocess.run(record, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode == NO_TESTS:
        raise PagedBenchError(f"the good {what} measured no metric with this selection ({' '.join(pytest_args)}): "
                              "pytest selected no test, nothing to bisect")
    if done.returncode != 0:
        raise PagedBenchError(f"the good {what} does not pass its own run (pytest exit {done.returncode}):\n"
                              f"{done.stdout[-2000:]}{done.stderr[-1000:]}")
    run = read_run(run_json(baselines))
    if blind := blind_spots(run):
        raise PagedBenchError(f"the good {what} measured too noisily to show any slowdown ({'; '.join(blind)}): "
                              "is the machine busy? Bisect when it is quiet")
    if not measured(run):
        raise PagedBenchError(f"the good {what} measured no metric with this selection ({' '.join(pytest_args)}): "
                              "no step could be judged, nothing to bisect")
    log(f"good {what}: {measured(run)} metric(s) measured as the baseline")
    for line in baseline_figures(run):
        log(f"  {line}")


def baseline_figures(run: dict) -> list[str]:
    """What the good end measured, each figure with the band a later step is judged in: the 'A' that
    every step's 'now vs baseline' line is read against."""
    out = []
    for test_id, entry in run.get("tests", {}).items():
        if entry.get("outcome", "passed") != "passed" or entry.get("contaminated"):
            continue
        for name, m in entry.get("metrics", {}).items():
            unit = f" {m['unit']}" if m.get("unit") else ""
            band = tol.band(m.get("floor", 0.0), (m.get("spread", 0.0),), m.get("run_spread", 0.0))
            out.append(f"{test_id.rsplit('::', 1)[-1]} {name} {m['value']:,.4g}{unit} "
                       f"({m.get('direction', '?')} is better, threshold ±{100 * band:.1f} %)")
    return out


def bisect(repo: Path, good: str, bad: str, pytest_args: list[str], log=print) -> str:
    """The first bad commit's full hash; PagedBenchError when the good revision fails or none is found."""
    repo = Path(repo).resolve()
    good, bad = _git(repo, "rev-parse", "--verify", f"{good}^{{commit}}"), _git(repo, "rev-parse", "--verify", f"{bad}^{{commit}}")
    tmp = Path(tempfile.mkdtemp(prefix="pagedbench-bisect-"))
    tree, baselines = tmp / "tree", tmp / "baselines"
    from pagedbench.cli.bisect_step import command as step  # the step module imports this one

    _git(repo, "worktree", "add", "--detach", "-q", str(tree), good)
    try:
        log(f"measuring the good revision {good[:12]} as the baseline")
        measure_baseline(f"revision {good[:12]}", baselines, pytest_args, tree, oracle_env(tree), log=log)
        # The bad end is shown bad before any step: a bad end that passes would make git bisect name it.
        _git(tree, "checkout", "-q", "--detach", bad)
        done = subprocess.run([*step(), str(run_json(baselines)),
                               *pytest_command(baselines, pytest_args)], cwd=tree, env=oracle_env(HERE),
                              capture_output=True, text=True)
        verdict = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else f"exit {done.returncode}"
        log(f"bad revision {bad[:12]}: {verdict.removeprefix('step: ')}")
        if done.returncode != 1:
            raise PagedBenchError(f"the bad revision {bad[:12]} did not come out bad ({verdict.removeprefix('step: ')}): "
                                  "nothing to bisect")
        _git(tree, "checkout", "-q", "--detach", good)
        _git(tree, "bisect", "start", bad, good)
        run = subprocess.run(["git", "bisect", "run", *step(), str(run_json(baselines)),
                              *pytest_command(baselines, pytest_args)], cwd=tree, env=oracle_env(HERE), capture_output=True, text=True)
        log(run.stdout[-6000:])
        found = re.search(r"^([0-9a-f]{40}) is the first bad commit", run.stdout, re.MULTILINE)
        if not found:
            raise PagedBenchError(f"git bisect found no first bad commit:\n{run.stdout[-2000:]}{run.stderr[-1000:]}")
        return found.group(1)
    finally:
        subprocess.run(["git", "bisect", "reset"], cwd=tree, capture_output=True)
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=repo, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
