"""The tutorial's "Real-World Impact" table (capacity and cost), from measured figures only.

The command line reads the hourly cost's default and check from here for every command, so
nothing this imports may load matplotlib.
"""

from __future__ import annotations

import math
from pathlib import Path

from pagedbench.errors import PagedBenchError
from pagedbench.gate.run_file import is_number
from pagedbench.report.results import CONCURRENT_USERS, HF_GENERATE, VLLM_THROUGHPUT, Result, results, sorted_by
from pagedbench.report.tables import DASH, fmt, md_table, ratio, times

DEFAULT_GPU_HOURLY_COST = 2.50   # $ per GPU-hour; --gpu-hourly-cost changes it
SECONDS_PER_DAY = 86_400
CAPACITY_TITLE = "Real-World Impact: capacity and cost"
VARIABLE_WORKLOADS = ("uniform", "sharegpt")  # test_vllm_throughput's variable-length workload


def check_hourly_cost(cost) -> float:
    if not is_number(cost) or not math.isfinite(cost) or cost <= 0:
        raise PagedBenchError(f"GPU hourly cost must be a positive number of $ per hour, got {cost!r}")
    return float(cost)


def _concurrent_pick(run: dict) -> Result | None:
    """test_concurrent_users at block size 16 if present, else the smallest block size."""
    rs = sorted_by(results(run, CONCURRENT_USERS), "block_size", "budget_tokens", "max_seq_len")
    return next((r for r in rs if r.param("block_size") == 16), rs[0] if rs else None)


def _variable_throughput(run: dict) -> Result | None:
    rs = [r for r in sorted_by(results(run, VLLM_THROUGHPUT), "model", "workload")
          if str(r.param("workload") or "").startswith(VARIABLE_WORKLOADS) and r.metric("req_per_s") is not None]
    return rs[0] if rs else None


def _hf_static(run: dict) -> Result | None:
    """HF generate() with the static cache at the largest batch that has a tok/s and a token count."""
    rs = [r for r in results(run, HF_GENERATE) if r.param("cache") == "static"
          and r.positive_param("batch") is not None and r.positive_param("new_tokens") is not None
          and r.metric("tok_per_s") is not None]
    return max(rs, key=lambda r: r.param("batch")) if rs else None


def capacity_figures(run: dict) -> tuple[dict, list[str], dict]:
    """({standard, paged}: (max batch, req/s)), the measurements missing, and where the figures came from."""
    users, vllm, hf = _concurrent_pick(run), _variable_throughput(run), _hf_static(run)
    missing = []
    if users is None:
        missing.append(f"{CONCURRENT_USERS} (max batch, both approaches)")
    else:
        for key, who in (("contiguous_users", "standard"), ("peak_running", "paged")):
            if users.metric(key) is None:
                missing.append(f"{key} of {CONCURRENT_USERS}, block {fmt(users.param('block_size'))} ({who} max batch)")
    if vllm is None:
        missing.append(f"req_per_s of {VLLM_THROUGHPUT} on the variable-length workload "
                       f"({' or '.join(w + '*' for w in VARIABLE_WORKLOADS)}; paged requests/s)")
    if hf is None:
        missing.append(f"tok_per_s of {HF_GENERATE} with the static cache (standard requests/s)")
    figures = {
        "standard": (users.metric("contiguous_users") if users else None,
                     hf.metric("tok_per_s") / hf.param("new_tokens") if hf else None),
        "paged": (users.metric("peak_running") if users else None, vllm.metric("req_per_s") if vllm else None),
    }
    return figures, missing, {"users": users, "vllm": vllm, "hf": hf}


def requests_per_day(req_s: float | None) -> float | None:
    return None if req_s is None else req_s * SECONDS_PER_DAY


def cost_per_million(req_s: float | None, hourly: float) -> float | None:
    """$ per 1M requests: the GPU-hours 1M requests take × the hourly cost."""
    return hourly / (req_s * 3600) * 1e6 if req_s else None


def _dollars(v) -> str:
    return DASH if v is None else f"${v:,.2f}"


def _hourly_text(hourly: float) -> str:
    """$2.50, or more digits where cents would round the given cost."""
    cents = hourly * 100
    return f"${hourly:,.2f}" if abs(cents - round(cents)) < 1e-9 else f"${hourly:,.6g}"


def capacity_body(run: dict, gpu_hourly_cost: float = DEFAULT_GPU_HOURLY_COST) -> str:
    hourly = check_hourly_cost(gpu_hourly_cost)
    figures, missing, src = capacity_figures(run)
    if missing:
        return "_Not in this run: " + "; ".join(missing) + "._"
    users, vllm, hf = src["users"], src["vllm"], src["hf"]
    (std_batch, std_rps), (paged_batch, paged_rps) = figures["standard"], figures["paged"]
    rows = []
    for name, batch, rps in (("standard (contiguous pre-allocation)", std_batch, std_rps),
                             ("paged (vLLM)", paged_batch, paged_rps)):
        rows.append([name, fmt(batch), fmt(rps, 2), fmt(requests_per_day(rps)),
                     _dollars(cost_per_million(rps, hourly))])
    rows.append(["paged ÷ standard", times(ratio(paged_batch, std_batch)), times(ratio(paged_rps, std_rps)),
                 times(ratio(requests_per_day(paged_rps), requests_per_day(std_rps))),
                 times(ratio(cost_per_million(paged_rps, hourly), cost_per_million(std_rps, hourly)), 2)])
    budget, max_len = users.param("budget_tokens"), users.param("max_seq_len")
    out_per_req = ratio(vllm.metric("output_tok_per_s"), vllm.metric("req_per_s"))
    caption = (f"Requests/day = requests/s × {SECONDS_PER_DAY:,}; cost per 1M requests = "
               f"**{_hourly_text(hourly)} per GPU-hour** (`--gpu-hourly-cost`) ÷ (requests/s × 3,600) × 10⁶.")
    notes = [
        f"- **Max batch:** {CONCURRENT_USERS}, block {fmt(users.param('block_size'))}, a {fmt(budget)}-token KV "
        f"budget: standard = the requests that fit with max_seq_len ({fmt(max_len)}) pre-allocated each; "
        "paged = the most requests vLLM ran at once.",
        f"- **Paged requests/s:** vLLM offline throughput, {vllm.param('model')}, {vllm.param('workload')} workload "
        f"({fmt(vllm.param('requests'))} requests"
        + (f", {fmt(out_per_req)} output tokens per request" if out_per_req is not None else "") + ").",
        f"- **Standard requests/s:** HF `generate()`, {hf.param('model')}, with a pre-allocated static cache at batch "
        f"{fmt(hf.param('batch'))} (the largest measured): tok/s ÷ {fmt(hf.param('new_tokens'))} new tokens per request.",
        "- The requests/s columns come from the throughput tests, which are not held to the max-batch column's "
        "KV budget, and the two engines served different requests"
        + (f" ({fmt(out_per_req)} vs {fmt(hf.param('new_tokens'))} output tokens each)" if out_per_req is not None
           else "")
        + ": the ratios compare the two measured set-ups, not identical work.",
    ]
    headers = ["approach", "max batch under the budget", "requests/s", "requests/day", "cost per 1M requests"]
    return "\n".join([caption, "", md_table(headers, rows), "", *notes])


def section_capacity(run: dict, out_dir: Path, gpu_hourly_cost: float = DEFAULT_GPU_HOURLY_COST) -> str:
    return f"## {CAPACITY_TITLE}\n\n" + capacity_body(run, gpu_hourly_cost)
