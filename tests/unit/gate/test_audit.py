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
