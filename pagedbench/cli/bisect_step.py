"""One step of `git bisect run`: run the pytest selection on the checked-out revision, judge it with the gate.

    python -P -m pagedbench.cli.bisect_step RUN.json PYTEST_COMMAND...

It runs in the bisected tree (git runs a step there) but judges with this checkout's module: the
bisect puts this checkout first on PYTHONPATH, and `-P` keeps the tree (the working directory) off
the import path, so revisions that lack this module, or judge differently, can be bisected too.
pytest itself runs on the tree (its PYTHONPATH is the working directory). Exit status: 0 good,
1 bad, 125 skip (bisect_commits.step_verdict); the verdict's figures are printed as `step: ...`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pagedbench.cli.bisect_commits import step_verdict


def command() -> list[str]:
    """How a bisect runs this module. Python 3.10 has no -P: the shim drops the working directory
    from the import path itself before it runs the module."""
    if sys.version_info >= (3, 11):
        return [sys.executable, "-P", "-m", "pagedbench.cli.bisect_step"]
    return [sys.executable, "-c", "import runpy, sys; del sys.path[0]; "
            "runpy.run_module('pagedbench.cli.bisect_step', run_name='__main__', alter_sys=True)"]


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -P -m pagedbench.cli.bisect_step RUN.json PYTEST_COMMAND...", file=sys.stderr)
        return 125  # git bisect run: a step that cannot run says nothing about the revision
    rc = subprocess.call(argv[1:], env={**os.environ, "PYTHONPATH": os.getcwd()})
    outcome, why = step_verdict(rc, Path(argv[0]))
    print(f"step: {why}", flush=True)
    return outcome


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
