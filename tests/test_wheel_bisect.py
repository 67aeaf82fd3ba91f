"""Bisect over a list of wheels: the search alone on every planted position, then end to end with
stand-in wheels, pip and the gate as the oracle."""

import base64
import hashlib
import json
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pagedbench.errors import PagedBenchError
from pagedbench.wheel_bisect import read_wheels, search

ROOT = Path(__file__).resolve().parents[1]


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


# ---- end to end: stand-in wheels 1..7, version 6 ten times slower, version 4 not a wheel ----------

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


def build_wheel(folder: Path, version: int, delay: float) -> Path:
    files = {"standin.py": f"import time\nVERSION = {version}\n\n\ndef work():\n    time.sleep({delay})\n",
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
    suite = tmp_path / "suite"  # the suite's conftest and package with one stand-in benchmark
    suite.mkdir()
    (suite / "conftest.py").write_text((ROOT / "conftest.py").read_text())
    (suite / "pagedbench").symlink_to(ROOT / "pagedbench")
    (suite / "test_standin.py").write_text(STANDIN_TEST)
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
    assert f"wheel 7/7 {wheels[6]}: bad (pytest exit 1)" in done.stdout
    assert f"wheel 4/7 {wheels[3]}: skip (install failed)" in done.stdout
    assert f"wheel 5/7 {wheels[4]}: good (pytest exit 0)" in done.stdout
    assert f"wheel 6/7 {wheels[5]}: bad (pytest exit 1)" in done.stdout
    # The last step's run: version 6 measured, failed by the gate's confirmed regression, not by an error.
    (entry,) = json.loads((suite / "runs" / "cpu-last.json").read_text())["tests"].values()
    assert entry["params"]["version"] == 6 and entry["outcome"] == "failed" and entry["remeasured"] >= 1
    assert [c["status"] for c in entry["comparisons"]] == ["regressed"]


@pytest.mark.parametrize("args", [["--wheels", "1,2", "--good", "HEAD"], ["--good", "HEAD"], []])
def test_bisect_takes_commits_or_wheels_not_both(args, capsys):
    from pagedbench.__main__ import main
    assert main(["bisect", *args, "--", "-k", "cpu"]) == 2
    assert "either --good REV and --bad REV, or --wheels" in capsys.readouterr().err
