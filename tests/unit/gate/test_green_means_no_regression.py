"""A green run must mean no regression: ratios blame the right side, stale baselines and other
settings are said out loud, and the summary counts what was not gated."""

from __future__ import annotations

import json

from pagedbench.gate import baseline_file as bl
from pagedbench.gate import verdicts
from pagedbench.gate.baseline_merge import merge_runs, split_label
from pagedbench.gate.gate import Gate, Options
from pagedbench.metrics import settings
from pagedbench.metrics.recorder import Recorder

H200 = {"slug": "h200", "name": "NVIDIA H200", "power_limit_w": 700.0, "identity": "NVIDIA H200, 700 W"}
PAGED = "tests/benchmarks/test_decode_kernels.py::test_paged_decode[h200-fa3-b1-ctx8192-bs16-shuffled]"
ASKED = {"kind": "EngineSettings", "asked": {"max_num_seqs": None, "block_size": 16},
         "resolved": {"max_num_seqs": 1024, "block_size": 16}}


def paged(latency_us: float, ratio: float) -> Recorder:
    rec = Recorder(PAGED, "h200")
    rec.metric("latency_us", latency_us, "us", "lower", spread=0.005, floor=0.03)
    rec.ratio("paged_to_contiguous", ratio, "x", "lower", spread=0.01, floor=0.03, sides="latency_us of both tests")
    return rec


def recorded_gate(tmp_path, rec: Recorder, **opts) -> Gate:
    """A gate whose baseline holds rec's figures, written by the gate itself."""
    writer = Gate(tmp_path, H200, {}, Options(sample_health=False, update=True))
    writer.judge(rec)
    writer.record_outcome(rec.test_id, "passed")
    writer.write_baselines()
    return Gate(tmp_path, H200, {}, Options(sample_health=False, **opts))


def test_a_reference_that_got_faster_is_not_blamed_on_the_paged_kernel(tmp_path):
    # The contiguous reference ran 10 % faster; the paged kernel itself moved +1 % (within ±3 %).
    gate = recorded_gate(tmp_path, paged(19.4, 1.00))
    assert gate.judge(paged(19.6, 1.10)) is None
    rows = {c.metric: c for c in gate.comparisons}
    assert rows["latency_us"].status == "ok"
    assert rows["paged_to_contiguous"].status == "reported"


def test_the_paged_side_still_fails_when_it_regresses(tmp_path):
    gate = recorded_gate(tmp_path, paged(19.4, 1.00), confirm=0)
    failure = gate.judge(paged(21.4, 1.10))
    assert failure and "latency_us" in failure and "REGRESSED" in failure


def test_an_improvement_beyond_twice_the_tolerance_says_the_baseline_is_stale(tmp_path):
    gate = recorded_gate(tmp_path, paged(20.0, 1.0))
    assert gate.judge(paged(17.0, 1.0)) is None  # -15 % against ±3 %: passes, but out loud
    (row,) = [c for c in gate.comparisons if c.metric == "latency_us"]
    assert verdicts.is_stale(row) and verdicts.STALE_NOTE in row.note
    lines = gate.summary_lines()
    assert any(line.startswith(verdicts.STALE_NOTE) and PAGED in line for line in lines)
    strict = recorded_gate(tmp_path / "strict", paged(20.0, 1.0), strict_stale=True)
    assert "stale" in strict.judge(paged(17.0, 1.0))


def test_an_improvement_within_twice_the_tolerance_is_not_stale(tmp_path):
    gate = recorded_gate(tmp_path, paged(20.0, 1.0), strict_stale=True)
    assert gate.judge(paged(19.0, 1.0)) is None  # -5 %: improved, not stale against ±3 %
    assert not any(verdicts.is_stale(c) for c in gate.comparisons)


def test_figures_from_other_settings_asked_for_are_not_compared(tmp_path):
    base = paged(20.0, 1.0)
    base.started(ASKED)
    gate = recorded_gate(tmp_path, base, confirm=0)
    now = paged(30.0, 1.0)  # 50 % slower, but the suite asked for another block size
    now.started({**ASKED, "asked": {**ASKED["asked"], "block_size": 32}})
    assert gate.judge(now) is None
    rows = {c.metric: c for c in gate.comparisons}
    assert rows["latency_us"].status == "not_compared"
    assert rows["latency_us"].note == "baseline from other settings: block_size 16 -> 32"
    assert "2 other settings" in gate.summary_lines()[-1]


def test_a_default_vllm_resolved_differently_is_compared_and_named(tmp_path):
    # What a vLLM upgrade does: the suite asks the same, vLLM resolves a lower cap, the figure regresses.
    base = paged(20.0, 1.0)
    base.started(ASKED)
    gate = recorded_gate(tmp_path, base, confirm=0)
    now = paged(30.0, 1.0)
    now.started({**ASKED, "resolved": {**ASKED["resolved"], "max_num_seqs": 256}})
    failure = gate.judge(now)
    assert failure and "vLLM resolved max_num_seqs 1024 -> 256" in failure


def test_the_same_settings_are_compared(tmp_path):
    base = paged(20.0, 1.0)
    base.started(ASKED)
    gate = recorded_gate(tmp_path, base, confirm=0)
    now = paged(30.0, 1.0)
    now.started(json.loads(json.dumps(ASKED)))
    assert "latency_us" in gate.judge(now)


def test_the_last_summary_line_counts_what_was_not_gated(tmp_path):
    gate = recorded_gate(tmp_path, paged(20.0, 1.0))
    gate.judge(paged(20.1, 1.0))
    fresh = Recorder(PAGED.replace("b1-", "b8-"), "h200")
    fresh.metric("latency_us", 30.0, "us", "lower")
    gate.judge(fresh)
    assert gate.summary_lines()[-1] == "gated 1 metric(s); NOT gated 2: 1 report-only ratio, 1 no baseline"


def test_settings_differences_name_each_change():
    a = settings.describe(type("S", (), {})(), {"max_num_seqs": 1024})
    assert settings.differences([a], [a]) == []
    assert settings.differences([ASKED], []) == ["1 engine start(s) -> 0"]


def test_merged_runs_count_their_machines_and_keep_settings(tmp_path):
    paths = []
    for i, (machine, value) in enumerate([("gpu-a", 100.0), ("gpu-a", 101.0), ("", 99.0)]):
        rec = paged(value, 1.0)
        rec.started(ASKED)
        g = Gate(tmp_path, {**H200, "machine_id": machine}, {}, Options(sample_health=False))
        g.commit = "abc123"
        g.judge(rec)
        g.record_outcome(rec.test_id, "passed")
        g.write_run(tmp_path / f"run{i}.json", interrupted=False)
        paths.append(str(tmp_path / f"run{i}.json") + ("@gpu-b" if not machine else ""))
    assert split_label(paths[2]) == (tmp_path / "run2.json", "gpu-b")
    _, _, by_slug, _, recorded = merge_runs(paths)
    latency = by_slug["h200"][PAGED]["latency_us"]
    assert (latency.runs, latency.machines) == (3, 2)
    assert recorded[PAGED] == ([ASKED], "abc123", None)  # settings, commit; no benchmark fixture: no timing
    assert by_slug["h200"][PAGED]["paged_to_contiguous"].gated is False
    out = bl.merge(None, "h200", H200, {}, by_slug["h200"], {PAGED: [ASKED]}, "abc123")
    again = bl.parse(out.to_json())
    assert again.machine(H200["identity"]).settings[PAGED] == [ASKED]
    assert again.machine(H200["identity"]).commits[PAGED] == "abc123"


def test_a_bisect_compares_across_settings_and_names_them(tmp_path):
    base = paged(20.0, 1.0)
    base.started(ASKED)
    gate = recorded_gate(tmp_path, base, confirm=0, compare_other_settings=True)
    now = paged(30.0, 1.0)
    now.started({**ASKED, "asked": {**ASKED["asked"], "max_num_seqs": 1}})
    failure = gate.judge(now)
    assert failure and "other settings asked: max_num_seqs None -> 1" in failure
