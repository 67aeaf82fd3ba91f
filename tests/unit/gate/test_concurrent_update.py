"""Two `--update-baselines` sessions writing one baselines folder at the same time: both selections end
up in baselines/<slug>.json, metrics and timing stats."""

import os
import subprocess
import sys
import time
from pathlib import Path

from pagedbench.gate import baseline_file as bl

ROOT = Path(__file__).resolve().parents[3]
TESTS = '''
def test_first(benchmark, metrics, target):
    benchmark(lambda: None)
    metrics.metric("x", 1.0, "u", "higher")


def test_second(benchmark, metrics, target):
    benchmark(lambda: None)
    metrics.metric("x", 2.0, "u", "higher")
'''
# Loaded by the first session only: it waits seconds between reading the baseline and writing it, so
# without the lock the second session's write would land in between and be lost.
SLOW_SAVE = '''
import time

from pagedbench.gate import baseline_file

_write = baseline_file.write_atomic


def slow_write(path, baseline):
    time.sleep(4)
    _write(path, baseline)


baseline_file.write_atomic = slow_write
'''


def test_two_writers_keep_both_selections(tmp_path):
    suite, baselines = tmp_path / "suite", tmp_path / "baselines"
    suite.mkdir()
    (suite / "conftest.py").write_text((ROOT / "conftest.py").read_text())
    (suite / "test_two.py").write_text(TESTS)
    (suite / "slowsave.py").write_text(SLOW_SAVE)

    def start(k, *extra):
        return subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra,
                                 "--benchmark-only", "--trust-machine", "--update-baselines", f"--baselines-dir={baselines}",
                                 f"--metrics-json={tmp_path / (k + '.json')}", "-k", f"{k} and cpu", "test_two.py"],
                                cwd=suite, env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{suite}"},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = start("first", "-p", "slowsave")
    time.sleep(1.0)
    second = start("second")
    outs = [p.communicate(timeout=300)[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, "\n".join(outs)
    base = bl.load(baselines / "cpu.json")
    both = {"test_two.py::test_first[cpu]", "test_two.py::test_second[cpu]"}
    tests = {t for m in base.machines.values() for t in m.tests}
    assert tests == both, tests
    timed = {t for m in base.machines.values() for t in m.timings if m.timing(t)}
    assert timed == both, timed
