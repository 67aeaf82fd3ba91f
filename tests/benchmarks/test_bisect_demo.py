"""The bisect demonstration: a planted slowdown in the throughput engine, found by git bisect with vLLM as the oracle."""

import subprocess
from pathlib import Path

import pytest

from pagedbench.cli.bisect_commits import bisect

ROOT = Path(__file__).resolve().parents[2]


def _git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.slow
def test_bisect_finds_the_planted_commit(tmp_path):
    pytest.importorskip("vllm", reason="the oracle runs vLLM's throughput benchmark")
    repo = tmp_path / "repo"
    _git(tmp_path, "clone", "-q", str(ROOT), str(repo))
    _git(repo, "config", "user.email", "bisect@pagedbench")
    _git(repo, "config", "user.name", "bisect")
    good = _git(repo, "rev-parse", "HEAD")
    engine = repo / "pagedbench" / "engines" / "engine_settings.py"
    text = engine.read_text()
    needle = "max_num_seqs=None"  # the throughput engine's cap: vLLM's default
    assert needle in text, "the planted edit no longer applies: update this test"
    planted = None
    for i in range(5):
        if i == 2:  # the throughput engine runs one request at a time: a real, large slowdown
            engine.write_text(text.replace(needle, "max_num_seqs=1"))
            _git(repo, "commit", "-qam", "plant: throughput engine at max_num_seqs=1")
            planted = _git(repo, "rev-parse", "HEAD")
        else:
            (repo / f"NOTE-{i}.txt").write_text(f"unrelated change {i}\n")
            _git(repo, "add", ".")
            _git(repo, "commit", "-qm", f"unrelated change {i}")
    found = bisect(repo, good, "HEAD", ["tests/benchmarks/test_throughput.py", "-k", "test_vllm_throughput and cpu-variable"],
                   log=lambda text: None)
    assert found == planted
