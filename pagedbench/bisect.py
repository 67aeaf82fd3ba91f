"""Find the commit that made a benchmark slower: `git bisect run` with the gate as the oracle.

    python -m pagedbench bisect --good REV --bad REV [--repo DIR] -- <pytest args>

The good revision is measured first and its run becomes a throwaway baseline; then each bisect
step runs the same pytest selection against it, with the gate's confirm-before-fail: exit 0 good,
1 bad (a confirmed regression or a failed assertion), 125 skip (the step does not collect, start
or run). It bisects a detached worktree, so the checkout in use is never touched. Steps run with
--trust-machine: both sides are measured on this machine, one after the other, so a busy machine
must not turn the comparison off. To bisect a list of vLLM wheels with the suite fixed, see
wheel_bisect.py: it shares the oracle and the baseline step with this.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import PagedBenchError

# The step runs outside the bisected tree, so revisions without this module can be bisected too.
STEP = '''import os, subprocess, sys
rc = subprocess.call(sys.argv[1:], env={**os.environ, "PYTHONPATH": os.getcwd()})
sys.exit({0: 0, 1: 1}.get(rc, 125))
'''


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise PagedBenchError(f"git {' '.join(args)} failed in {cwd}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def verdict(returncode: int) -> int:
    """pytest's exit status as git bisect reads it: 0 good, 1 bad, 125 skip (no collection, usage error...)."""
    return {0: 0, 1: 1}.get(returncode, 125)


def pytest_command(baselines: Path, pytest_args: list[str], python: str = sys.executable) -> list[str]:
    return [python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--benchmark-only", "--trust-machine",
            f"--baselines-dir={baselines}", *pytest_args]


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
        run = subprocess.run(["git", "bisect", "run", sys.executable, str(step), *pytest_command(baselines, pytest_args)],
                             cwd=tree, capture_output=True, text=True)
        log(run.stdout[-6000:])
        found = re.search(r"^([0-9a-f]{40}) is the first bad commit", run.stdout, re.MULTILINE)
        if not found:
            raise PagedBenchError(f"git bisect found no first bad commit:\n{run.stdout[-2000:]}{run.stderr[-1000:]}")
        return found.group(1)
    finally:
        subprocess.run(["git", "bisect", "reset"], cwd=tree, capture_output=True)
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=repo, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
