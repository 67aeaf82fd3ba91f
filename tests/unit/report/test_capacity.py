"""The "Real-World Impact" capacity table and the --gpu-hourly-cost option (report/capacity.py).

The runs are SYNTHETIC (synthetic_runs.py): every number is made up to exercise the report code.
"""


from __future__ import annotations

import os
import subprocess
import sys

import pytest
from synthetic_runs import (
    REPO,
    report_cli,
    result_doc,
    row_cells,
    section_of,
    synthetic_run,
    table_row,
    write_json,
)

from pagedbench.report import report, write_report

HF_STATIC_B64_TOK_S, HF_NEW_TOKENS = 1_100.0, 128
PAGED_REQ_S, PAGED_OUT_TOK_S = 22.4, 6_150.0          # synthetic_run's uniform-32-512 vLLM result
PAGED_USERS, CONTIGUOUS_USERS = 29, 8                  # synthetic_run's block-16 concurrent-users result


def capacity_run() -> dict:
    run = synthetic_run()
    slug = run["slug"]
    run["tests"][f"tests/test_hf.py::test_hf_generate[{slug}-static-b64]"] = result_doc(
        {"cache": "static", "batch": 64, "new_tokens": HF_NEW_TOKENS, "model": "llama-3.1-8b"},
        {"tok_per_s": HF_STATIC_B64_TOK_S})
    run["tests"][f"tests/test_vllm_scheduler.py::test_concurrent_users[{slug}-bs8]"] = result_doc(
        {"block_size": 8, "budget_tokens": 16_384, "max_seq_len": 2048, "avg_len": 500, "n_offered": 64},
        {"peak_running": 31, "contiguous_users": 7})
    run["tests"][f"tests/test_vllm_throughput.py::test_vllm_throughput[{slug}-repeat]"] = result_doc(
        {"workload": "repeat-16x128", "model": "llama-3.1-8b", "requests": 16},
        {"output_tok_per_s": 2_000.0, "req_per_s": 15.6})
    return run


def _capacity_section(md: str) -> str:
    return section_of(md, "Real-World Impact: capacity and cost")


def _expected_rows(hourly: float, paged_users=PAGED_USERS, contiguous_users=CONTIGUOUS_USERS):
    """The table's rows, worked out here: each request makes new_tokens tokens; a day is 86,400 s;
    1M requests take 1e6 / (req/s x 3,600) GPU-hours."""
    std_rps = HF_STATIC_B64_TOK_S / HF_NEW_TOKENS                  # 8.59375 req/s
    rows = {}
    for name, users, rps in (("standard (contiguous pre-allocation)", contiguous_users, std_rps),
                             ("paged (vLLM)", paged_users, PAGED_REQ_S)):
        rows[name] = [name, str(users), f"{rps:.2f}", f"{rps * 86_400:,.0f}", f"${hourly * 1e6 / (rps * 3_600):,.2f}"]
    rows["paged ÷ standard"] = ["paged ÷ standard", f"{paged_users / contiguous_users:.1f}×",
                                f"{PAGED_REQ_S / std_rps:.1f}×", f"{PAGED_REQ_S / std_rps:.1f}×",
                                f"{std_rps / PAGED_REQ_S:.2f}×"]
    return rows


def test_capacity_table_from_measured_figures(tmp_path):
    section = _capacity_section(write_report(capacity_run(), tmp_path).read_text())
    for name, expected in _expected_rows(2.50).items():
        assert row_cells(table_row(section, name)) == expected
    # By hand, for the default $2.50/h: standard 1,100 / 128 = 8.59 req/s = 742,500 req/day,
    # 2.5e6 / (8.59375 x 3,600) = $80.81 per 1M; paged 22.4 req/s = 1,935,360 req/day, $31.00 per 1M.
    assert row_cells(table_row(section, "standard (contiguous pre-allocation)"))[2:] == ["8.59", "742,500", "$80.81"]
    assert row_cells(table_row(section, "paged (vLLM)"))[2:] == ["22.40", "1,935,360", "$31.00"]
    assert "**$2.50 per GPU-hour**" in section
    assert "pre-allocated static cache at batch 64" in section      # the largest HF static batch
    assert "block 16, a 16,384-token KV budget" in section          # block 16 preferred over block 8
    assert "uniform-32-512 workload" in section and "repeat-16x128" not in section
    assert f"{PAGED_OUT_TOK_S / PAGED_REQ_S:.0f} vs 128 output tokens each" in section  # 275 vs 128
    assert "Not in this run" not in section


def test_capacity_table_smallest_block_without_16(tmp_path):
    run = capacity_run()
    run["tests"] = {k: v for k, v in run["tests"].items() if not k.endswith("-bs16]")}
    section = _capacity_section(write_report(run, tmp_path).read_text())
    assert row_cells(table_row(section, "paged (vLLM)"))[1] == "31"          # block 8 < block 32
    assert row_cells(table_row(section, "standard (contiguous pre-allocation)"))[1] == "7"
    assert "block 8, a 16,384-token KV budget" in section


def test_gpu_hourly_cost_option_changes_cost(tmp_path):
    run = write_json(tmp_path, capacity_run())
    proc = report_cli(run, "--out", tmp_path / "dear", "--gpu-hourly-cost", "4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    dear = _capacity_section((tmp_path / "dear" / "report.md").read_text())
    proc = report_cli(run, "--out", tmp_path / "default", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    default = _capacity_section((tmp_path / "default" / "report.md").read_text())
    for hourly, section in ((4.0, dear), (2.50, default)):
        assert f"**${hourly:.2f} per GPU-hour**" in section
        for name, expected in _expected_rows(hourly).items():
            assert row_cells(table_row(section, name)) == expected
    # Only the cost column moves with the hourly cost: 4 / 2.5 = 1.6x dearer.
    assert row_cells(table_row(dear, "paged (vLLM)"))[:4] == row_cells(table_row(default, "paged (vLLM)"))[:4]
    assert row_cells(table_row(dear, "paged (vLLM)"))[4] == f"${4.0 * 1e6 / (PAGED_REQ_S * 3_600):,.2f}" == "$49.60"
    md = report([run], tmp_path / "api", gpu_hourly_cost=0.125).read_text()
    assert "**$0.125 per GPU-hour**" in md  # not rounded to cents in the caption


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "cheap"])
def test_gpu_hourly_cost_rejects_bad_values(tmp_path, bad):
    proc = report_cli(write_json(tmp_path, capacity_run()), "--out", tmp_path / "out", "--gpu-hourly-cost", bad, cwd=tmp_path)
    assert proc.returncode == 2 and "--gpu-hourly-cost" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_cli_default_cost_is_the_reports():
    from pagedbench import cli
    from pagedbench.report import capacity

    assert cli._parser().parse_args(["report", "run.json"]).gpu_hourly_cost == capacity.DEFAULT_GPU_HOURLY_COST == 2.50


def test_cli_loads_matplotlib_only_for_a_report(tmp_path):
    code = ("import sys; from pagedbench.cli import main; "
            f"main(['readme', '--readme', {str(tmp_path / 'none.md')!r}]); print('matplotlib' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.stdout.strip() == "False", proc.stderr


def _without(run: dict, *needles: str) -> dict:
    run["tests"] = {k: v for k, v in run["tests"].items() if not any(n in k for n in needles)}
    return run


@pytest.mark.parametrize("drop, says", [
    (("test_hf_generate[synthetic-gpu-static",), "tok_per_s of test_hf_generate with the static cache"),
    (("-uniform]",), "req_per_s of test_vllm_throughput on the variable-length workload"),
    (("test_concurrent_users",), "test_concurrent_users (max batch, both approaches)"),
])
def test_capacity_missing_input_says_which(tmp_path, drop, says):
    section = _capacity_section(write_report(_without(capacity_run(), *drop), tmp_path).read_text())
    assert section.strip().startswith("_Not in this run: ")
    assert says in section
    assert "| approach |" not in section
    for other in ("tok_per_s of test_hf_generate", "req_per_s of test_vllm_throughput", "test_concurrent_users (max"):
        if not says.startswith(other):
            assert other not in section  # only what is missing is named


def test_capacity_missing_metric_of_concurrent_users(tmp_path):
    run = capacity_run()
    del run["tests"]["tests/test_vllm_scheduler.py::test_concurrent_users[synthetic-gpu-bs16]"]["metrics"][
        "contiguous_users"]
    section = _capacity_section(write_report(run, tmp_path).read_text())
    assert "_Not in this run: contiguous_users of test_concurrent_users, block 16 (standard max batch)._" in section


# ---- python -m pagedbench readme ------------------------------------------------------
