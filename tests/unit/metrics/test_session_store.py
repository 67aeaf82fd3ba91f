"""Cross-test hand-offs: one store, and a derived figure whose other side did not run is said missing."""

import json
import shutil
from pathlib import Path

from pagedbench.metrics.session_store import SessionStore

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[3]


def test_store_keys_by_test_and_key():
    store = SessionStore()
    store.put("test_sweep", ("h100", 4), 900.0)
    store.put("test_sweep", ("h100", 16), 2_000.0)
    store.put("test_sweep", ("h200", 4), 1_000.0)
    store.put("test_other", ("h100", 8), 1.0)
    assert store.get("test_sweep", ("h100", 16)) == 2_000.0
    assert store.get("test_sweep", ("h100", 64)) is None
    assert store.under("test_sweep", "h100") == {4: 900.0, 16: 2_000.0}
    assert store.under("test_sweep") == {}  # keys two parts long are not one part under the empty prefix
    store.put("test_sweep", ("h100", 4), 950.0)  # a re-measurement replaces the figure
    assert store.under("test_sweep", "h100")[4] == 950.0


HANDOFF = """
def test_hf(metrics, target, session_store):
    metrics.metric("tok_per_s", 100.0, "tok/s", "higher")
    session_store.put(test_hf.__name__, (target.slug,), 100.0)

def test_vllm(metrics, target, session_store):
    metrics.metric("tok_per_s", 400.0, "tok/s", "higher")
    hf = session_store.get(test_hf.__name__, (target.slug,))
    if hf:
        metrics.metric("speedup", 400.0 / hf, "x", "higher")
    else:
        metrics.not_measured("speedup", "test_hf did not run earlier in this session")
"""


def test_derived_figure_is_recorded_or_said_missing(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    shutil.copy(ROOT / "conftest.py", pytester.path / "conftest.py")
    pytester.makepyfile(test_handoff=HANDOFF)
    run_json = pytester.path / "run.json"

    def run(selection):
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--trust-machine", "-k", selection,
                                               "--baselines-dir", str(pytester.path / "baselines"),
                                               "--metrics-json", str(run_json))
        return result, json.loads(run_json.read_text())["tests"]["test_handoff.py::test_vllm[cpu]"]

    result, entry = run("cpu")
    result.assert_outcomes(passed=2)
    assert entry["metrics"]["speedup"]["value"] == 4.0 and "not_measured" not in entry["params"]

    result, entry = run("cpu and vllm")  # -k leaves the HF side out of this session
    result.assert_outcomes(passed=1)
    assert "speedup" not in entry["metrics"]
    assert entry["params"]["not_measured"] == {"speedup": "test_hf did not run earlier in this session"}
    result.stdout.fnmatch_lines(["*not measured test_handoff.py::test_vllm[[]cpu[]] speedup: test_hf did not run*"])
