"""Serving-tier sections: `vllm serve` under vLLM's own load generator, and every setting vLLM ran with.

A serving test sweeps its loads inside one test, so one result holds several loads, each under
its own key ('r16', 'c64', 'cache_on'): the tables have a row per key, not per result.
"""

from __future__ import annotations

import math
from pathlib import Path

from pagedbench.gate.run_file import is_number
from pagedbench.metrics.slo import SLO_MS
from pagedbench.report.results import (
    COMPILE_MODES,
    ENGINE_STARTUP,
    KV_DTYPE_THROUGHPUT,
    LLAMA70B_TP2,
    LONG_CONTEXT,
    PREFIX_CACHING_THROUGHPUT,
    SERVING_CONCURRENCY,
    SERVING_PREFIX,
    SERVING_RATES,
    TP_SCALING,
    VLLM_BENCH_REFERENCE,
    VLLM_THROUGHPUT,
    Result,
    function_name,
    load_keys,
    load_metric,
    param_order,
    results,
)
from pagedbench.report.serving_plots import plot_serving_latency, plot_serving_throughput
from pagedbench.report.tables import DASH, NOT_IN_RUN, NOT_IN_RUN_PLOT, fmt, md_table, plot_link, times

SERVING_TITLE = "Serving under load"
SETTINGS_TITLE = "Settings vLLM was run with"
SHAPES = ("variable", "long_prompt", "long_output")  # the order the serving tier runs them
# The variable shape's load at 16 req/s: the README's headline latency (vLLM's perf CI runs QPS 16 too).
HEADLINE_SHAPE, HEADLINE_KEY = "variable", "r16"

# (header, figure of one load, decimals): the columns every load table shares, after its own first ones.
LOAD_COLUMNS = (("achieved req/s", "req_per_s", 2), ("output tok/s", "output_tok_per_s", 0),
                ("TTFT p50 ms", "ttft_p50_ms", 1), ("TTFT p99 ms", "ttft_p99_ms", 1),
                ("TPOT p50 ms", "tpot_p50_ms", 1), ("TPOT p99 ms", "tpot_p99_ms", 1),
                ("ITL p99 ms", "itl_p99_ms", 1), ("E2E p99 ms", "e2el_p99_ms", 0),
                ("goodput req/s", "request_goodput", 2))
SERVER_COLUMNS = ("KV usage peak", "preemptions", "meets SLO")

BOUND_WHY = {
    "at least": "every measured rate met the SLO, so the limit lies above the highest rate the server sustained",
    "interpolated": "interpolated between the last rate that met the SLO and the first that did not",
    "none": "even the lowest measured rate missed it",
}


def slo_line() -> str:
    return (f"SLO (MLPerf Inference, Llama-3.1-8B server scenario): p99 TTFT ≤ {SLO_MS['ttft']:,.0f} ms and "
            f"p99 TPOT ≤ {SLO_MS['tpot']:,.0f} ms. Goodput counts the requests inside both limits "
            "(`vllm bench serve --goodput`).")


def meets_slo(r: Result, key: str) -> str:
    p99 = [load_metric(r, key, f"{name}_p99_ms") for name in SLO_MS]
    if None in p99:
        return DASH
    return "yes" if all(v <= SLO_MS[name] for v, name in zip(p99, SLO_MS)) else "**no**"


def _load_cells(r: Result, key: str) -> list[str]:
    usage = load_metric(r, key, "server.kv_cache_usage_peak")  # vLLM reports it as a fraction of the pool
    return ([fmt(load_metric(r, key, name), digits) for _, name, digits in LOAD_COLUMNS]
            + [fmt(None if usage is None else 100 * usage, 1, pct=True),
               fmt(load_metric(r, key, "server.preemptions")), meets_slo(r, key)])


def rate_label(r: Result, key: str) -> str:
    """The offered rate: '4 req/s', or '∞' for all requests at once."""
    v = r.param(f"{key}.offered_rate")
    if not is_number(v):
        return key
    return "∞ (all at once)" if math.isinf(v) else f"{v:g} req/s"


def _capacity(r: Result) -> str:
    text, bound = r.param("slo_capacity"), r.param("slo_capacity_bound")
    if not text:
        return "SLO capacity: _not recorded._"
    why = BOUND_WHY.get(str(bound))
    return f"SLO capacity: **{text}**" + (f" ({why})." if why else ".")


def _shape_order(r: Result):
    shape = str(r.param("shape"))
    return (SHAPES.index(shape) if shape in SHAPES else len(SHAPES), shape)


def _rates(rs: list[Result], out_dir: Path) -> list[str]:
    if not rs:
        return ["### Request rates", "", NOT_IN_RUN_PLOT]
    parts = []
    headers = ["offered", "prompts"] + [h for h, _, _ in LOAD_COLUMNS] + list(SERVER_COLUMNS)
    for r in sorted(rs, key=_shape_order):
        keys = load_keys(r, "rates")
        rows = [[rate_label(r, k), fmt(r.param(f"{k}.prompts"))] + _load_cells(r, k) for k in keys]
        shape = r.param("shape") or DASH
        spread = r.param("range_ratio")
        spread = (f"each length drawn uniformly within ±{100 * spread:g} % of it" if is_number(spread) and spread > 0
                  else "every request the same" if spread == 0 else f"range ratio {_value(spread)}")
        parts += [f"### Request rates: {shape}", "",
                  f"Prompts of {fmt(r.param('input_len'))} tokens, outputs of {fmt(r.param('output_len'))} "
                  f"({spread}); Poisson arrivals at each offered rate.", "",
                  md_table(headers, rows, text=(len(headers) - 1,)), "", _capacity(r), ""]
        if shape == "variable":
            name = plot_serving_latency(r, keys, {k: rate_label(r, k).split(" (")[0] for k in keys}, SLO_MS, out_dir)
            parts += [plot_link(name, "serving latency vs request rate"), ""]
    return parts


def _concurrency(rs: list[Result], out_dir: Path) -> list[str]:
    parts = ["### Concurrency", ""]
    if not rs:
        return parts + [NOT_IN_RUN_PLOT, ""]
    parts += ["All requests offered at once, at most this many in flight (the client's limit, as in vLLM's CI "
              "sweeps).", ""]
    headers = ["most in flight", "prompts"] + [h for h, _, _ in LOAD_COLUMNS] + list(SERVER_COLUMNS) + ["running peak"]
    for r in sorted(rs, key=_shape_order):
        keys = load_keys(r, "concurrency", "c")
        rows = [[k.removeprefix("c"), fmt(r.param(f"{k}.prompts"))] + _load_cells(r, k)
                + [fmt(load_metric(r, k, "server.running_peak"))] for k in keys]
        if len(rs) > 1:
            parts += [f"Shape: {r.param('shape') or DASH}", ""]
        name = plot_serving_throughput(r, keys, {k: k.removeprefix("c") for k in keys}, out_dir)
        parts += [md_table(headers, rows, text=(len(headers) - 2,)), "",
                  plot_link(name, "output tok/s vs TPOT p50 over concurrency"), ""]
    return parts


def _prefix(rs: list[Result]) -> list[str]:
    parts = ["### Prefix caching on vs off", ""]
    if not rs:
        return parts + [NOT_IN_RUN]
    headers = ["prefix caching", "TTFT p50 ms", "TTFT p99 ms", "TPOT p50 ms", "output tok/s", "prefix hit tokens",
               "hit rate", "TTFT p50 on ÷ off"]
    for r in rs:
        parts += [f"{fmt(r.param('requests'))} requests at once, each {fmt(r.param('shared_len'))} shared + "
                  f"{fmt(r.param('unique_len'))} own prompt tokens, block size {fmt(r.param('block_size'))}: "
                  "with caching on, every request after the first reuses the shared prompt's full blocks.", ""]
        hit_rate = r.metric("cache_on.hit_rate")
        rows = [[state] + [fmt(load_metric(r, key, m), d) for m, d in
                           (("ttft_p50_ms", 1), ("ttft_p99_ms", 1), ("tpot_p50_ms", 1), ("output_tok_per_s", 0))]
                for state, key in (("on", "cache_on"), ("off", "cache_off"))]
        rows[0] += [fmt(r.metric("cache_on.prefix_hit_tokens")), fmt(None if hit_rate is None else 100 * hit_rate, 1,
                                                                      pct=True), times(r.metric("ttft_p50_ratio_on_off"), 2)]
        rows[1] += [DASH, DASH, DASH]  # the test asserts no hits with caching off and records none
        parts += [md_table(headers, rows), ""]
    return parts


def section_serving(run: dict, out_dir: Path) -> tuple[str, str]:
    rates, conc, prefix = (results(run, f) for f in (SERVING_RATES, SERVING_CONCURRENCY, SERVING_PREFIX))
    if not (rates or conc or prefix):
        return SERVING_TITLE, NOT_IN_RUN_PLOT
    intro = ("`vllm serve` in its own process, loaded by vLLM's own load generator (`vllm bench serve`, random "
             "dataset). " + slo_line() + " KV usage peak: the largest share of vLLM's KV pool in use, sampled from "
             "the server's `/metrics` during the load.")
    parts = [intro, ""] + _rates(rates, out_dir) + _concurrency(conc, out_dir) + _prefix(prefix)
    return SERVING_TITLE, "\n".join(parts).rstrip("\n")


def headline_serving(run: dict) -> tuple[float | None, str | None]:
    """(TTFT p99 ms of the variable shape at 16 req/s, its SLO capacity text) for the headline figures."""
    r = next((x for x in results(run, SERVING_RATES) if x.param("shape") == HEADLINE_SHAPE), None)
    if r is None:
        return None, None
    capacity = r.param("slo_capacity")
    return load_metric(r, HEADLINE_KEY, "ttft_p99_ms"), str(capacity) if capacity else None


def _value(v) -> str:
    """A setting's value as vLLM's argument would take it: Python's True/None, numbers with separators."""
    text = (f"{v:g}" if isinstance(v, float) else fmt(v)) if is_number(v) else "None" if v is None else str(v)
    return text.replace("|", "\\|")  # a pipe would end the markdown cell


def _settings_table(rs: list[Result], param: str) -> str:
    seen, rows = set(), []
    for r in rs:  # the same engine in several tests: each setting once (a differing value gets its own row)
        for s in r.param(param) or []:
            if isinstance(s, dict) and (key := (s.get("name"), repr(s.get("value")))) not in seen:
                seen.add(key)
                rows.append([f"`{s.get('name')}`", _value(s.get("value")), _value(s.get("vllm_default")),
                             str(s.get("why") or DASH).replace("|", "\\|")])
    if not rows:
        return NOT_IN_RUN
    # Merged runs can hold a test from before the suite recorded its settings: its figures came from an
    # engine this table does not describe, and the reader must be told which tests the table is for.
    by = sorted({function_name(r.nodeid) for r in rs if r.param(param)})
    silent = sorted({function_name(r.nodeid) for r in rs} - set(by))
    source = "Recorded by " + ", ".join(f"`{f}`" for f in by) + (
        "; not by " + ", ".join(f"`{f}`" for f in silent) + " (a run from before the suite recorded them)"
        if silent else "") + "."
    return "\n".join([md_table(["setting", "value", "vLLM's default", "why"], rows, numeric_from=4), "", source])


def _effective(rs: list[Result]) -> str:
    found = [(str(r.param("workload")), r.param("vllm_effective")) for r in rs
             if isinstance(r.param("vllm_effective"), dict)]
    if not found:
        return NOT_IN_RUN
    distinct = [e for i, (_, e) in enumerate(found) if e not in [x for _, x in found[:i]]]
    columns = found if len(distinct) > 1 else [("value", distinct[0])]  # one engine serves every workload
    names = sorted({k for _, e in columns for k in e}, key=param_order)
    rows = [[f"`{n}`"] + [_value(e.get(n)) if n in e else DASH for _, e in columns] for n in names]
    return md_table(["setting"] + [w for w, _ in columns], rows, numeric_from=len(columns) + 1)


def section_settings(run: dict, out_dir: Path) -> tuple[str, str]:
    offline = results(run, VLLM_THROUGHPUT) + results(run, VLLM_BENCH_REFERENCE)
    served = results(run, SERVING_RATES) + results(run, SERVING_CONCURRENCY)
    parallel = results(run, TP_SCALING) + results(run, LLAMA70B_TP2)
    tier = [r for f in (COMPILE_MODES, PREFIX_CACHING_THROUGHPUT, KV_DTYPE_THROUGHPUT, LONG_CONTEXT, ENGINE_STARTUP)
            for r in results(run, f)]
    if not (offline or served or parallel or tier):
        return SETTINGS_TITLE, NOT_IN_RUN
    parts = ["Every setting the suite gives vLLM that differs from vLLM's own default, as the tests recorded it; "
             "everything else is vLLM's default for the device.", "",
             "### Offline engine (`LLM`: throughput tier and its `vllm bench throughput` reference)", "",
             _settings_table(offline, "settings_changed"), "",
             "What vLLM resolved the throughput engine's settings to on this device:", "",
             _effective(results(run, VLLM_THROUGHPUT)), "",
             "### Server (`vllm serve`: serving tier)", "", _settings_table(served, "server_settings")]
    if parallel:
        parts += ["", "### Offline engine at tensor parallel 2", "", _settings_table(parallel, "settings_changed")]
    if tier:  # each case changes one setting more on purpose (the KV dtype, eager, the context length)
        parts += ["", "### Settings tier (each case's engine: the offline engine's changes and the one under test)", "",
                  _settings_table(tier, "settings_changed")]
    return SETTINGS_TITLE, "\n".join(parts)
