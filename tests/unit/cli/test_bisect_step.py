"""The bisect step module: pytest's exit status and run JSON in, git bisect's exit status out, judged by
this checkout's code even when the bisected tree has a pagedbench of its own."""

import json
import os
import subprocess
import sys
from pathlib import Path

from pagedbench.cli import bisect_step

HERE = Path(__file__).resolve().parents[3]


def _exits(code: int) -> list[str]:
    return [sys.executable, "-c", f"import sys; sys.exit({code})"]


def test_no_tests_and_a_crash_are_skips_a_failure_is_bad(tmp_path, capsys):
    missing = str(tmp_path / "none.json")
    assert bisect_step.main([missing, *_exits(5)]) == 125   # pytest: no tests collected
    assert bisect_step.main([missing, *_exits(1)]) == 1     # a failed test or a confirmed regression
    assert bisect_step.main([missing, *_exits(3)]) == 125   # pytest's internal error
    assert bisect_step.main([missing]) == 125               # no command: nothing said about the revision
    assert capsys.readouterr().out.count("step: ") == 3


def test_pytest_runs_on_the_tree(tmp_path, monkeypatch):
    seen = tmp_path / "pythonpath"
    monkeypatch.chdir(tmp_path)
    bisect_step.main([str(tmp_path / "none.json"), sys.executable, "-c",
                      f"import os; open({str(seen)!r}, 'w').write(os.environ['PYTHONPATH'])"])
    assert seen.read_text() == str(tmp_path)


def test_the_step_judges_with_this_checkout_not_the_bisected_tree(tmp_path):
    tree = tmp_path / "tree"
    (tree / "pagedbench" / "cli").mkdir(parents=True)
    for init in ("pagedbench/__init__.py", "pagedbench/cli/__init__.py"):
        (tree / init).write_text("")
    (tree / "pagedbench" / "cli" / "bisect_step.py").write_text("raise SystemExit(1)  # an old revision: 'bad'\n")
    run = tmp_path / "step-run.json"
    run.write_text(json.dumps({"tests": {}}))
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    done = subprocess.run([*bisect_step.command(), str(run), *_exits(5)], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 125, done.stdout + done.stderr
    assert done.stdout.startswith("step: skip"), done.stdout
