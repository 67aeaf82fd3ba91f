"""The run JSON: what the gate writes is what the tools read back."""

import json

from pagedbench import run_file
from pagedbench.gate import Gate, Options
from pagedbench.recorder import Recorder

DEVICE = {"slug": "cpu", "name": "SYNTHETIC CPU", "identity": "synthetic, 2 cores"}
# The format's keys as the readers (report, readme, baseline, history) know them; a change here is a new schema.
KEYS = ["commit", "finished", "gpu", "identity", "interrupted", "schema_version", "slug", "started", "tests",
        "versions"]


def test_gate_writes_what_load_run_reads(tmp_path):
    path = tmp_path / "runs" / "cpu-last.json"
    gate = Gate(tmp_path, DEVICE, {"vllm": "0.0-synthetic"}, Options(sample_health=False, metrics_json=path),
                commit="abc1234")
    rec = Recorder("tests/test_x.py::test_x[cpu]", "cpu")
    rec.exact("num_gpu_blocks", 2048, "blocks")
    gate.judge(rec)
    gate.record_outcome(rec.test_id, "passed")
    gate.finish(interrupted=False)

    assert gate.run_path == path and not path.with_suffix(".json.tmp").exists()
    text = path.read_text()
    doc = run_file.load_run(path)
    assert text == json.dumps(doc, indent=2, sort_keys=True) + "\n"  # sorted keys, two spaces, a final newline
    assert list(doc) == KEYS
    assert doc["schema_version"] == run_file.RUN_SCHEMA_VERSION == 1
    assert doc["slug"] == "cpu" and doc["commit"] == "abc1234" and doc["interrupted"] is False
    assert doc["tests"][rec.test_id]["metrics"]["num_gpu_blocks"]["value"] == 2048
