"""Find the first of a list of vLLM wheels that made a benchmark slower, the suite held fixed.

    python -m pagedbench bisect --wheels FILE|W1,W2,... [--install-cmd TEMPLATE] [--python PY]
                                [--package vllm] [--repo DIR] -- <pytest args>

The list runs oldest (good) to newest (bad), one entry a line in FILE (# comments) or comma-separated:
a wheel's path, a pip requirement (vllm==0.26.0) or a bare version (taken as --package==VERSION).
The oldest is installed and measured as a throwaway baseline, as the commit bisect measures its good
revision; the newest is measured next, so a list whose newest entry passes stops there instead of
naming it. Then a binary search over the entries between, each step judged by the same oracle as
the commit bisect (the gate with confirm-before-fail: good, bad, or skip when the install fails or
pytest cannot collect or start). Skipped entries are stepped around as git bisect does; where they
leave several candidates, all are named.

Where a wheel goes: by default `pip install --no-deps --target` into a fresh folder put first on the
oracle's PYTHONPATH. The wheel shadows the environment's copy without touching it, so nothing needs
restoring afterwards; with --no-deps the environment's torch and the rest must suit every wheel.
--install-cmd replaces the command (a shell line; {python}, {wheel} and {target} are filled in,
quoted), e.g. '{python} -m pip install --no-deps --force-reinstall {wheel}' with --python naming a
venv kept for bisecting: that changes the venv, so never point it at the one you work in.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from pagedbench.cli.bisect_commits import measure_baseline, oracle_env, pytest_command, run_json, step_verdict
from pagedbench.errors import PagedBenchError

DEFAULT_INSTALL = "{python} -m pip install -q --no-deps --force-reinstall --target {target} {wheel}"
VERSION = re.compile(r"\d[\w.!+-]*")


def read_wheels(spec: str, package: str = "vllm") -> list[str]:
    """The entries of --wheels: a file of one a line, or a comma-separated list; bare versions pinned."""
    path = Path(spec)
    if path.is_file() and path.suffix != ".whl":
        entries = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    else:
        entries = [e.strip() for e in spec.split(",")]
    entries = [f"{package}=={e}" if VERSION.fullmatch(e) else e for e in entries if e]
    if len(entries) < 2:
        raise PagedBenchError(f"--wheels {spec!r}: needs at least two entries, oldest (good) first")
    return entries


def search(count: int, judge: Callable[[int], int]) -> list[int]:
    """Binary search between entry 0 (good) and entry count-1 (bad) with judge(i) -> 0/1/125. Returns
    the first bad entry's index, or the indices it may be when skipped entries stand before it."""
    good, bad, skipped = 0, count - 1, set()
    while left := [i for i in range(good + 1, bad) if i not in skipped]:
        i = left[len(left) // 2]
        outcome = judge(i)
        if outcome == 0:
            good = i
        elif outcome == 1:
            bad = i
        else:
            skipped.add(i)
    return [i for i in range(good + 1, bad) if i in skipped] + [bad]


def bisect_wheels(wheels: list[str], pytest_args: list[str], repo: Path = Path("."), python: str = sys.executable,
                  install_cmd: str = DEFAULT_INSTALL, log=print) -> list[str]:
    """The first bad wheel (one entry), or the entries it may be when skips hide it."""
    repo = Path(repo).resolve()
    tmp = Path(tempfile.mkdtemp(prefix="pagedbench-wheels-"))
    baselines = tmp / "baselines"

    def install(i: int) -> Path | None:
        target = tmp / f"site-{i}"
        target.mkdir()
        line = install_cmd.format(python=shlex.quote(python), wheel=shlex.quote(wheels[i]), target=shlex.quote(str(target)))
        done = subprocess.run(line, shell=True, capture_output=True, text=True)
        if done.returncode == 0:
            return target
        why = (done.stderr.strip() or done.stdout.strip() or f"exit {done.returncode}").splitlines()[-1]
        log(f"  install of {wheels[i]} failed: {why}")
        return None

    def judge(i: int) -> int:
        target = install(i)
        if target is None:
            outcome, why = 125, "skip (install failed)"
        else:
            rc = subprocess.run(pytest_command(baselines, pytest_args, python), cwd=repo, env=oracle_env(target, repo),
                                capture_output=True, text=True).returncode
            outcome, why = step_verdict(rc, run_json(baselines))
            shutil.rmtree(target, ignore_errors=True)  # an unpacked vLLM wheel is gigabytes
        log(f"wheel {i + 1}/{len(wheels)} {wheels[i]}: {why}")
        return outcome

    try:
        log(f"measuring the good wheel {wheels[0]} as the baseline")
        target = install(0)
        if target is None:
            raise PagedBenchError(f"the good wheel {wheels[0]} does not install (--install-cmd {install_cmd!r})")
        measure_baseline(f"wheel {wheels[0]}", baselines, pytest_args, repo, oracle_env(target, repo), python, log=log)
        shutil.rmtree(target, ignore_errors=True)
        newest = judge(len(wheels) - 1)
        if newest != 1:
            raise PagedBenchError(f"the newest wheel {wheels[-1]} did not come out bad: nothing to bisect")
        return [wheels[i] for i in search(len(wheels), judge)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
