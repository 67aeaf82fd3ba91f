"""Find the commit that made a benchmark slower: `git bisect run` with the gate as the oracle.

    python -m pagedbench bisect --good REV --bad REV [--repo DIR] -- <pytest args>

The good revision is measured first and its run becomes a throwaway baseline; then each bisect
step runs the same pytest selection against it, with the gate's confirm-before-fail: exit 0 good,
1 bad (a confirmed regression or a failed assertion), 125 skip (the step does not collect, start
or run). It bisects a detached worktree, so the checkout in use is never touched. Steps run with
--trust-machine: both sides are measured on this machine, one after the other, so a busy machine
must not turn the comparison off. To bisect vLLM wheels instead, keep the suite fixed and install
the wheel under test in each step (a `git bisect run` script of your own calling `run_step`).
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


def pytest_command(baselines: Path, pytest_args: list[str]) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--benchmark-only", "--trust-machine",
            f"--baselines-dir={baselines}", *pytest_args]


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
        record = pytest_command(baselines, pytest_args) + ["--update-baselines", "--confirm-runs=0"]
        env = {**os.environ, "PYTHONPATH": str(tree)}
        done = subprocess.run(record, cwd=tree, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise PagedBenchError(f"the good revision {good[:12]} does not pass its own run (pytest exit "
                                  f"{done.returncode}):\n{done.stdout[-2000:]}")
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
