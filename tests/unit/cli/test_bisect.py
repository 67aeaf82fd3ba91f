"""Bisect on a stand-in benchmark: the oracle's verdicts, the wheel search alone on every planted
position, then end to end with the gate as the oracle over stand-in wheels (pip) and stand-in commits
(git bisect). The planted vLLM commit is in test_history.py: it needs vLLM and a quiet machine."""

import base64
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pagedbench.cli import bisect_commits as bisect
from pagedbench.cli.bisect_commits import step_verdict
from pagedbench.cli.bisect_wheels import read_wheels, search
from pagedbench.errors import PagedBenchError

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("returncode, spread, verdict", [
    (0, 0.01, 0), (1, 0.01, 1), (4, 0.01, 125), (5, 0.01, 125),
    (0, 0.40, 125),  # 3 x 40 % spread: a band of 120 %, no slowdown of a higher-is-better rate can show
    (1, 0.40, 1),
])
def test_step_verdict(tmp_path, returncode, spread, verdict):
    run = tmp_path / "step-run.json"
    status, now = ("ok", 9.9) if returncode == 0 else ("regressed", 1.0)
    run.write_text(json.dumps({"tests": {"t[cpu]": {"outcome": "passed", "metrics": {"tok_per_s": {
        "value": now, "unit": "tok/s", "direction": "higher", "spread": spread, "floor": 0.5}},
        "comparisons": [{"test_id": "t[cpu]", "metric": "tok_per_s", "unit": "tok/s", "direction": "higher",
                         "baseline": 10.0, "now": now, "tolerance": 0.5, "status": status, "change": now / 10.0 - 1}]}}}))
    outcome, why = step_verdict(returncode, run)
    assert outcome == verdict
    assert ("too noisy" in why) == (returncode == 0 and spread > 0.3)
    if verdict == 0:
        assert why == "good (pytest exit 0: 1 metric(s) gated, nearest to a regression: t[cpu] tok_per_s 9.9 tok/s " \
                      "vs 10 tok/s (-1.0 %, threshold ±50.0 %))"
    if verdict == 1:
        assert "t[cpu] tok_per_s 1 tok/s vs 10 tok/s (-90.0 %, threshold ±50.0 %)" in why


def test_a_pass_that_gated_nothing_is_a_skip(tmp_path):
    """`-- -k nothing`: every test skipped or deselected, pytest exit 0, nothing compared: not a good step."""
    run = tmp_path / "step-run.json"
    run.write_text(json.dumps({"tests": {"t[h100]": {"outcome": "skipped", "metrics": {}, "comparisons": []}}}))
    outcome, why = step_verdict(0, run)
    assert outcome == 125 and "no metric was compared" in why
    assert step_verdict(0, tmp_path / "none.json")[0] == 125  # no run JSON at all


def test_a_pass_with_an_ungated_two_mode_figure_is_a_skip(tmp_path):
    run = tmp_path / "step-run.json"
    run.write_text(json.dumps({"tests": {"t[cpu]": {"metrics": {}, "unstable": {"tok_per_s": [5.0, 10.0]}}}}))
    assert step_verdict(0, run) == (125, "skip (passed, but too noisy to show a slowdown: t[cpu] tok_per_s (two modes, not gated))")


@pytest.mark.parametrize("count", range(2, 10))
def test_search_names_every_planted_entry_in_log2_steps(count):
    for planted in range(1, count):
        judged = []
        found = search(count, lambda i, judged=judged, planted=planted: judged.append(i) or int(i >= planted))
        assert found == [planted]
        assert 0 not in judged and count - 1 not in judged  # both ends are measured before the search
        assert len(judged) <= math.ceil(math.log2(count - 1))


def test_search_steps_around_a_skip_and_names_what_it_hides():
    verdicts = lambda skip: (lambda i: 125 if i in skip else int(i >= 5))  # noqa: E731
    assert search(8, verdicts({3})) == [5]
    assert search(8, verdicts({4})) == [4, 5]  # the skipped entry right before the first bad one may be it
    assert search(8, verdicts({1, 2, 3, 4, 5, 6})) == [1, 2, 3, 4, 5, 6, 7]


def test_wheel_list_from_a_file_or_commas(tmp_path):
    listing = tmp_path / "wheels.txt"
    listing.write_text("# oldest first\n0.25.0\n\n/w/vllm-0.26.0-cp38-abi3-linux_x86_64.whl  # rc\nvllm==0.27.0\n")
    assert read_wheels(str(listing)) == ["vllm==0.25.0", "/w/vllm-0.26.0-cp38-abi3-linux_x86_64.whl", "vllm==0.27.0"]
    assert read_wheels("1.0,2.0", package="standin") == ["standin==1.0", "standin==2.0"]
    with pytest.raises(PagedBenchError, match="at least two"):
        read_wheels("0.26.0")


def test_a_good_end_too_noisy_to_judge_stops_the_bisect(tmp_path, monkeypatch):
    def noisy_pass(cmd, **kw):
        Path(bisect.run_json(tmp_path / "baselines")).write_text(json.dumps({"tests": {"t[cpu]": {"metrics": {
            "tok_per_s": {"value": 1.0, "unit": "tok/s", "direction": "higher", "spread": 0.5, "floor": 0.5}}}}}))
        return subprocess.CompletedProcess(cmd, 0, "", "")
    monkeypatch.setattr(bisect.subprocess, "run", noisy_pass)
    with pytest.raises(PagedBenchError, match="too noisily to show any slowdown.*tok_per_s ±150 %"):
        bisect.measure_baseline("revision abc", tmp_path / "baselines", ["-k", "cpu"], tmp_path, {})


# ---- end to end: a stand-in benchmark, ten times slower from a planted version on -------------------

STANDIN_TEST = '''
import time

import standin


def test_standin(benchmark, metrics, target):
    seconds = []

    def once():
        t0 = time.perf_counter()
        standin.work()
        seconds.append(time.perf_counter() - t0)

    benchmark.pedantic(once, rounds=5, iterations=1)
    metrics.param(version=standin.VERSION)
    metrics.rate("calls_per_s", 1, seconds, "calls/s", floor=0.5)  # a 10x slowdown, far outside any noise
'''


def make_suite(folder: Path) -> Path:
    """The suite's conftest and package (linked) with one stand-in benchmark."""
    folder.mkdir(exist_ok=True)
    (folder / "conftest.py").write_text((ROOT / "conftest.py").read_text())
    (folder / "pagedbench").symlink_to(ROOT / "pagedbench")
    (folder / "test_standin.py").write_text(STANDIN_TEST)
    return folder


def standin_module(version: int, delay: float) -> str:
    return f"import time\nVERSION = {version}\n\n\ndef work():\n    time.sleep({delay})\n"


def build_wheel(folder: Path, version: int, delay: float) -> Path:
    files = {"standin.py": standin_module(version, delay),
             f"standin-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: standin\nVersion: {version}\n",
             f"standin-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = f"standin-{version}.dist-info/RECORD"
    digest = lambda text: base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()  # noqa: E731
    files[record] = "".join(f"{name},sha256={digest(text)},{len(text.encode())}\n" for name, text in files.items()) + f"{record},,\n"
    path = folder / f"standin-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        for name, text in files.items():
            whl.writestr(name, text)
    return path


def test_wheel_bisect_names_the_planted_version_and_skips_the_broken_one(tmp_path):
    suite = make_suite(tmp_path / "suite")
    wheels = []
    for version in range(1, 8):
        if version == 4:
            broken = tmp_path / "standin-4-py3-none-any.whl"
            broken.write_text("not a zip file\n")
            wheels.append(broken)
        else:
            wheels.append(build_wheel(tmp_path, version, 0.1 if version >= 6 else 0.01))
    listing = tmp_path / "wheels.txt"
    listing.write_text("".join(f"{w}\n" for w in wheels))
    done = subprocess.run([sys.executable, "-m", "pagedbench", "bisect", "--wheels", str(listing), "--repo", str(suite),
                           "--", "test_standin.py", "-k", "cpu"],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    print(done.stdout, done.stderr)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"first bad wheel: {wheels[5]}")
    # Bad by the gate's confirmed regression of the stand-in's rate, not by an error in the step.
    # The good end's figures, then each step's against them (now vs baseline, change, threshold).
    assert f"good wheel {wheels[0]}: 1 metric(s) measured as the baseline" in done.stdout
    assert re.search(r"  test_standin\[cpu\] calls_per_s [\d.,]+ calls/s \(higher is better, threshold ±[\d.]+ %\)",
                     done.stdout), done.stdout
    assert f"wheel 7/7 {wheels[6]}: bad (pytest exit 1: test_standin[cpu] calls_per_s " in done.stdout
    assert f"wheel 4/7 {wheels[3]}: skip (install failed)" in done.stdout  # after pip's own error line
    assert f"wheel 5/7 {wheels[4]}: good (pytest exit 0: 1 metric(s) gated" in done.stdout
    assert f"wheel 6/7 {wheels[5]}: bad (pytest exit 1: test_standin[cpu] calls_per_s " in done.stdout


@pytest.mark.parametrize("args", [["--wheels", "1,2", "--good", "HEAD"], ["--good", "HEAD"], []])
def test_bisect_takes_commits_or_wheels_not_both(args, capsys):
    from pagedbench.cli import main
    assert main(["bisect", *args, "--", "-k", "cpu"]) == 2
    assert "either --good REV and --bad REV, or --wheels" in capsys.readouterr().err


def _git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_commit_bisect_names_the_planted_commit(tmp_path):
    repo = make_suite(tmp_path / "repo")
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "bisect@pagedbench")
    _git(repo, "config", "user.name", "bisect")
    commits = []
    for i in range(6):  # commit 3 makes the stand-in ten times slower; the others change only its VERSION
        (repo / "standin.py").write_text(standin_module(i, 0.1 if i >= 3 else 0.01))
        (repo / "NOTE.txt").write_text(f"change {i}\n")
        _git(repo, "add", ".")
        _git(repo, "commit", "-qm", f"change {i}")
        commits.append(_git(repo, "rev-parse", "HEAD"))
    lines = []
    assert bisect.bisect(repo, commits[0], commits[-1], ["test_standin.py", "-k", "cpu"], log=lines.append) == commits[3]
    assert "step: bad (pytest exit 1: test_standin[cpu] calls_per_s " in "\n".join(lines)


def _planted_repo(tmp_path, slow_from: int | None) -> tuple[Path, list[str]]:
    repo = make_suite(tmp_path / "repo")
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "bisect@pagedbench")
    _git(repo, "config", "user.name", "bisect")
    commits = []
    for i in range(3):
        slow = slow_from is not None and i >= slow_from
        (repo / "standin.py").write_text(standin_module(i, 0.1 if slow else 0.01))
        _git(repo, "add", ".")
        _git(repo, "commit", "-qm", f"change {i}")
        commits.append(_git(repo, "rev-parse", "HEAD"))
    return repo, commits


def test_a_selection_that_measures_nothing_stops_the_bisect(tmp_path):
    """`bisect ... -- -k nothing` used to end with rc 0 and a "first bad commit" after measuring nothing."""
    repo, commits = _planted_repo(tmp_path, slow_from=1)
    done = subprocess.run([sys.executable, "-m", "pagedbench", "bisect", "--good", commits[0], "--bad", commits[-1],
                           "--repo", str(repo), "--", "test_standin.py", "-k", "nothing"],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "first bad commit" not in done.stdout, done.stdout + done.stderr
    assert "measured no metric with this selection" in done.stderr, done.stderr


def test_a_bad_end_that_is_not_bad_stops_the_bisect(tmp_path):
    repo, commits = _planted_repo(tmp_path, slow_from=None)  # nothing slower anywhere
    lines = []
    with pytest.raises(PagedBenchError, match=f"the bad revision {commits[-1][:12]} did not come out bad .good"):
        bisect.bisect(repo, commits[0], commits[-1], ["test_standin.py", "-k", "cpu"], log=lines.append)
    assert any("metric(s) gated" in line for line in lines), lines
