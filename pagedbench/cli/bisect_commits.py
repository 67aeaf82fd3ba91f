"""Find the commit that made a benchmark slower: `git bisect run` with the gate as the oracle.

    python -m pagedbench bisect --good REV --bad REV [--repo DIR] -- <pytest args>

The good revision is measured first and its run becomes a throwaway baseline; then each bisect
step runs the same pytest selection against it, with the gate's confirm-before-fail: exit 0 good,
1 bad (a confirmed regression or a failed assertion), 125 skip (the step does not collect, start
or run). It bisects a detached worktree, so the checkout in use is never touched. Steps run with
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

# The step script runs outside the bisected tree and judges with this checkout's module (on its
# PYTHONPATH), so revisions without this module can be bisected too; pytest runs on the tree.
STEP = '''import os, subprocess, sys
from pagedbench.cli.bisect_commits import step_verdict
rc = subprocess.call(sys.argv[2:], env={**os.environ, "PYTHONPATH": os.getcwd()})
outcome, why = step_verdict(rc, sys.argv[1])
print(f"step: {why}")
sys.exit(outcome)
'''
HERE = Path(__file__).resolve().parents[2]  # the folder holding this checkout's pagedbench
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
    return [python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--benchmark-only", "--trust-machine",
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


def regressions(run: dict) -> list[str]:
    return [f"{c['test_id'].rsplit('::', 1)[-1]} {c['metric']} {100 * c['change']:+.1f} %"
            for entry in run.get("tests", {}).values() for c in entry.get("comparisons", [])
            if c.get("status") == "regressed" and c.get("change") is not None]


def step_verdict(returncode: int, run_path: Path) -> tuple[int, str]:
    """git bisect's exit code for a step (0 good, 1 bad, 125 skip) and why: pytest's exit status, but a
    pass too noisy to have shown a slowdown is a skip, not a good step."""
    run = read_run(run_path)
    if returncode == 0 and (blind := blind_spots(run)):
        return 125, f"skip (passed, but too noisy to show a slowdown: {blind[0]})"
    outcome = returncode if returncode in VERDICTS else 125
    worse = regressions(run) if outcome == 1 else []
    return outcome, f"{VERDICTS.get(outcome, 'skip')} (pytest exit {returncode}{': ' if worse else ''}{', '.join(worse)})"


def oracle_env(*path: Path) -> dict:
    """The environment a step's pytest runs in: these folders first on the import path (the tree under
    test, a step's installed wheel) so they win over what the environment has installed."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in path)}


def measure_baseline(what: str, baselines: Path, pytest_args: list[str], cwd: Path, env: dict,
                     python: str = sys.executable) -> None:
    """Record the good end as a throwaway baseline; one measurement, since nothing is compared yet."""
    record = pytest_command(baselines, pytest_args, python) + ["--update-baselines", "--confirm-runs=0"]
    done = subprocess.run(record, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise PagedBenchError(f"the good {what} does not pass its own run (pytest exit {done.returncode}):\n"
                              f"{done.stdout[-2000:]}{done.stderr[-1000:]}")
    if blind := blind_spots(read_run(run_json(baselines))):
        raise PagedBenchError(f"the good {what} measured too noisily to show any slowdown ({'; '.join(blind)}): "
                              "is the machine busy? Bisect when it is quiet")


def bisect(repo: Path, good: str, bad: str, pytest_args: list[str], log=print) -> str:
    """The first bad commit's full hash; PagedBenchError when the good revision fails or none is found."""
    repo = Path(repo).resolve()
    good, bad = _git(repo, "rev-parse", "--verify", f"{good}^{{commit}}"), _git(repo, "rev-parse", "--verify", f"{bad}^{{commit}}")
    tmp = Path(tempfile.mkdtemp(prefix="pagedbench-bisect-"))
    tree, baselines, step = tmp / "tree", tmp / "baselines", tmp / "step.py"
    step.write_text(STEP)
    _git(repo, "worktree", "add", "--detach", "-q", str(tree), good)
    try:
        log(f"measuring the good revision {good[:12]} as the baseline")
        measure_baseline(f"revision {good[:12]}", baselines, pytest_args, tree, oracle_env(tree))
        _git(tree, "bisect", "start", bad, good)
        run = subprocess.run(["git", "bisect", "run", sys.executable, str(step), str(run_json(baselines)),
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
