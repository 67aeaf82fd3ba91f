"""`pagedbench audit` names what keeps a baseline from gating well."""

from __future__ import annotations

from pagedbench.gate import audit
from pagedbench.gate import baseline_file as bl

T = "tests/benchmarks/test_throughput.py::test_vllm_throughput[h200-variable]"
IDENT = "NVIDIA H200, 700 W"


def baseline(runs: int, machines: int, settings: list | None) -> bl.Baseline:
    tok = bl.Metric(12_000.0, "tok/s", "higher", runs=runs, machines=machines)
    blocks = bl.Metric(27_000.0, "blocks", "equal", 0.0, 0.0, portable=True)
    ratio = bl.Metric(11.0, "x", "higher", runs=1, gated=False)
    machine = bl.Machine({"identity": IDENT}, {}, {T: {"output_tok_per_s": tok, "speedup_vs_hf": ratio}},
                         {T: settings} if settings is not None else {})
    return bl.Baseline("h200", {}, {T: {"num_gpu_blocks": blocks}}, {IDENT: machine})


def test_one_run_one_machine_and_missing_figures_are_listed(tmp_path):
    f = audit.audit(baseline(1, 0, None), [T, T.replace("variable", "repeat")], tmp_path)
    assert f.no_baseline == [T.replace("variable", "repeat")]
    assert f.few_runs == [f"{T} output_tok_per_s (1 run)"]           # exact counts and ratios need no noise model
    assert f.one_machine == [f"{T} output_tok_per_s (machine not recorded)"]
    assert f.no_settings == [T] and not f.clean
    assert any("no baseline" in line for line in audit.report_lines(f))


def test_a_baseline_from_three_runs_on_two_machines_with_settings_is_fit(tmp_path):
    f = audit.audit(baseline(3, 2, []), [T], tmp_path)
    assert f.clean, audit.report_lines(f)
    assert audit.report_lines(f) == ["h200: 1 test(s) in the baseline: fit to gate"]


def test_dropping_a_stale_workload_removes_its_figures_and_keeps_the_rest():
    serving = "tests/benchmarks/test_serving.py::test_serving_rates[h200-variable]"
    base = baseline(3, 2, [])
    base.machines[IDENT].tests[serving] = {"r1.tpot_p50_ms": bl.Metric(12.0, "ms", "lower")}
    base.machines[IDENT].settings[serving] = []
    kept, gone = bl.drop(base, "*test_serving.py::*")
    assert gone == [serving]
    assert serving not in kept.machines[IDENT].tests and serving not in kept.machines[IDENT].settings
    assert T in kept.machines[IDENT].tests and T in kept.tests
