"""The serving tier's sections: the SLO, the rate and concurrency tables, prefix caching
(report/serving_sections.py).

The runs are SYNTHETIC (synthetic_runs.py): every number is made up to exercise the report code.
"""


from __future__ import annotations

from synthetic_runs import (
    CAPACITY_REQ_S,
    CONCURRENCY_LOADS,
    PREFIX_HIT_TOKENS,
    RATE_LOADS,
    SERVING_OUT_LEN,
    SLO_TPOT_MS,
    SLO_TTFT_MS,
    row_cells,
    section_of,
    synthetic_run,
    table_row,
)

from pagedbench.report import figures_table, write_report


def _load_row(key, offered, prompts, req_s, ttft50, ttft99, tpot50, tpot99, usage_pct, preemptions):
    """The cells a load table shows after its first columns, worked out from syn_run's inputs."""
    meets = ttft99 <= SLO_TTFT_MS and tpot99 <= SLO_TPOT_MS
    return [f"{req_s:.2f}", f"{req_s * SERVING_OUT_LEN:,.0f}", f"{ttft50:,.1f}", f"{ttft99:,.1f}", f"{tpot50:.1f}",
            f"{tpot99:.1f}", f"{3 * tpot99:.1f}", f"{ttft99 + SERVING_OUT_LEN * tpot50:,.0f}",
            f"{req_s if meets else req_s / 10:.2f}", f"{usage_pct:.1f}%", f"{preemptions:.0f}",
            "yes" if meets else "**no**"]


def test_serving_states_the_slo(full_report):
    _, md = full_report
    section = section_of(md, "Serving under load")
    assert "p99 TTFT ≤ 2,000 ms and p99 TPOT ≤ 100 ms" in section and "MLPerf" in section


def test_serving_rates_table_and_capacity(full_report):
    _, md = full_report
    section = section_of(md, "Serving under load")
    variable = section.split("### Request rates: variable")[1].split("###")[0]
    assert "Prompts of 272 tokens, outputs of 272 (each length drawn uniformly within ±88.2 % of it)" in variable
    labels = {"r1": "1 req/s", "r4": "4 req/s", "r16": "16 req/s", "rinf": "∞ (all at once)"}
    for i, load in enumerate(RATE_LOADS):
        row = row_cells(table_row(variable, labels[load[0]], str(load[2])))
        assert row[2:] == _load_row(*load, usage_pct=5 * (i + 1), preemptions=3 * i)
    assert row_cells(table_row(variable, "∞ (all at once)"))[-1] == "**no**"  # 2,600 ms TTFT p99 > 2,000
    assert (f"SLO capacity: **{CAPACITY_REQ_S:.2f} req/s** (interpolated between the last rate that met the SLO "
            "and the first that did not).") in variable
    assert "![serving latency vs request rate](serving_latency.png)" in variable
    long_prompt = section.split("### Request rates: long_prompt")[1].split("###")[0]
    assert "(every request the same)" in long_prompt
    assert "SLO capacity: **no measured rate meets the SLO** (even the lowest measured rate missed it)." in long_prompt
    assert "serving_latency.png" not in long_prompt  # the latency plot is the variable shape's


def test_serving_capacity_at_least(tmp_path):
    """Every rate met the SLO: the text the test recorded ('>= …') is shown with what the bound means."""
    run = synthetic_run()
    params = run["tests"]["tests/benchmarks/test_serving.py::test_serving_rates[synthetic-gpu-variable]"]["params"]
    params.update(slo_capacity=">= 31.31 req/s", slo_capacity_bound="at least")
    md = write_report(run, tmp_path).read_text()
    assert ("SLO capacity: **>= 31.31 req/s** (every measured rate met the SLO, so the limit lies above the highest "
            "rate the server sustained).") in section_of(md, "Serving under load")
    assert row_cells(figures_table(run).splitlines()[2])[-1] == ">= 31.31 req/s"


def test_serving_concurrency_table(full_report):
    _, md = full_report
    section = section_of(md, "Serving under load").split("### Concurrency")[1].split("###")[0]
    for i, load in enumerate(CONCURRENCY_LOADS):
        row = row_cells(table_row(section, load[0].removeprefix("c"), str(load[2])))
        assert row[2:-1] == _load_row(*load, usage_pct=5 * (i + 1), preemptions=3 * i)
        assert row[-1] == f"{min(load[2], 48 * (i + 1))}"  # running peak
    assert "![output tok/s vs TPOT p50 over concurrency](serving_throughput_latency.png)" in section


def test_serving_prefix_caching_table(full_report):
    _, md = full_report
    section = section_of(md, "Serving under load").split("### Prefix caching on vs off")[1]
    assert "100 requests at once, each 500 shared + 100 own prompt tokens, block size 16" in section
    assert row_cells(table_row(section, "on")) == ["on", "300.0", "400.0", "10.0", f"{100 * SERVING_OUT_LEN:,}",
                                           f"{PREFIX_HIT_TOKENS:,}", f"{100 * PREFIX_HIT_TOKENS / 60_000:.1f}%",
                                           "0.25×"]
    assert row_cells(table_row(section, "off")) == ["off", "1,200.0", "1,560.0", "16.6", f"{45 * SERVING_OUT_LEN:,}",
                                            "–", "–", "–"]
    assert PREFIX_HIT_TOKENS == 49_104  # 99 requests x 31 full blocks of 16 tokens


def test_serving_not_in_run(tmp_path):
    """Only the prefix-caching test ran: the other parts say so, their plots are skipped, nothing else breaks."""
    run = synthetic_run()
    run["tests"] = {k: v for k, v in run["tests"].items() if "test_serving_prefix_caching" in k}
    md = write_report(run, tmp_path).read_text()
    section = section_of(md, "Serving under load")
    assert section.count("_Not in this run; plot skipped._") == 2  # rates and concurrency
    assert "| on | 300.0 |" in section
    assert not list(tmp_path.glob("serving_*.png"))
    assert section_of(md, "Settings vLLM was run with").strip() == "_Not in this run._"
    assert section_of(md, "vLLM offline throughput").strip() == "_Not in this run._"
    assert row_cells(figures_table(run).splitlines()[2])[-2:] == ["–", "–"]
