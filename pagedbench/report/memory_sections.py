"""Memory-tier sections: memory waste, concurrent users, prefix sharing, fragmentation, block pool size.

The bodies (note and tables, no heading) are shared with the README's CPU tables.
"""

from __future__ import annotations

from pathlib import Path

from pagedbench.gate.run_file import is_number
from pagedbench.report.memory_plots import plot_concurrent_users, plot_memory_waste, plot_prefix_sharing
from pagedbench.report.results import (
    BLOCK_COUNTS,
    BYTE_MODELS,
    CONCURRENT_USERS,
    GB,
    MEMORY_WASTE,
    PREFIX_SHARING,
    REFERENCE_MODEL,
    Result,
    block_gb,
    bytes_per_token,
    prefix_pairs,
    results,
    sorted_by,
    waste_rows,
)
from pagedbench.report.tables import NOT_IN_RUN, NOT_IN_RUN_PLOT, fmt, md_table, plot_link, ratio, times
from pagedbench.workloads.model import GIB


def memory_waste_title(rs: list[Result]) -> str:
    users = {r.param("n_requests") for r in rs}
    n = users.pop() if len(users) == 1 else None
    return f"Memory waste, {n} variable-length users" if is_number(n) else "Memory waste, variable-length users"


def memory_waste_body(rs: list[Result], models=BYTE_MODELS) -> str:
    """Note and table: allocated, used and wasted bytes, contiguous vs paged, per model and block size."""
    rows = []
    for label, model in models:
        bpt = bytes_per_token(model)
        for r in rs:
            for approach, alloc, used in waste_rows(r, bpt) or []:
                rows.append(([label] if len(models) > 1 else []) + [
                    fmt(r.param("block_size")), approach, fmt(alloc / GB, 2), fmt(used / GB, 2),
                    fmt((alloc - used) / GB, 2), fmt(100 * (alloc - used) / alloc if alloc else None, 1, True)])
    measured_on = sorted({str(r.param("model")) for r in rs})
    converted = "per model" if len(models) > 1 else f"for {models[0][0]}"
    note = (f"Block counts measured on {', '.join(measured_on)}, converted to bytes {converted} "
            "(GB = 10⁹ bytes). Contiguous = every request reserves max_seq_len slots; "
            "paged = peak blocks × block size.")
    headers = ["block size", "approach", "allocated GB", "used GB", "wasted GB", "waste %"]
    if len(models) > 1:
        headers = ["model", *headers]
    table = md_table(headers, rows, numeric_from=len(headers) - 4) if rows else NOT_IN_RUN
    return "\n".join([note, "", table])


def section_memory_waste(run: dict, out_dir: Path) -> tuple[str, str]:
    rs = sorted_by(results(run, MEMORY_WASTE), "block_size")
    title = memory_waste_title(rs)
    if not rs:
        return title, NOT_IN_RUN_PLOT
    return title, "\n".join([memory_waste_body(rs), "", plot_link(plot_memory_waste(rs, out_dir), "memory waste")])


CONCURRENT_TITLE = "Concurrent users under a KV budget"


def concurrent_users_body(rs: list[Result], model=REFERENCE_MODEL) -> str:
    """Two tables: how many users fit, and the blocks they held at the peak against pre-allocation."""
    label, model = model
    bpt = bytes_per_token(model)
    rows, blocks = [], []
    for r in rs:
        budget, bs, max_len = r.param("budget_tokens"), r.positive_param("block_size"), r.positive_param("max_seq_len")
        gb = budget * bpt / GB if is_number(budget) else None
        rows.append([fmt(r.param("block_size")), fmt(budget), fmt(gb, 2), fmt(r.param("max_seq_len")), fmt(r.param("avg_len")),
                     fmt(r.param("n_offered")), fmt(r.metric("contiguous_users")), fmt(r.metric("predicted_users")),
                     fmt(r.metric("sim_peak_running")), fmt(r.metric("peak_running")), fmt(r.metric("preemptions")),
                     times(ratio(r.metric("peak_running"), r.metric("contiguous_users")))])
        peak, running = r.metric("peak_blocks"), r.metric("peak_running")
        if peak is None:
            continue
        contiguous_gb = running * max_len * bpt / GB if None not in (running, max_len) else None
        blocks.append([fmt(r.param("block_size")), fmt(running), fmt(peak), fmt(r.metric("sim_peak_blocks")),
                       fmt(block_gb(peak, bs, bpt), 2), fmt(contiguous_gb, 2),
                       fmt(r.metric("paged_vs_contiguous_pct"), 1, True)])
    headers = ["block size", "budget tokens", f"budget GB ({label})", "max seq len", "avg len", "offered",
               "contiguous users", "predicted paged", "simulated peak", "measured peak running", "preemptions",
               "measured ÷ contiguous"]
    note = ("Contiguous users = budget ÷ max_seq_len; predicted = blocks in the budget ÷ blocks per average "
            "request; measured = most requests vLLM ran at once.")
    parts = [note, "", md_table(headers, rows, numeric_from=0)]
    if blocks:
        parts += ["", "At that peak, the blocks vLLM held against what pre-allocating max_seq_len for the same "
                  f"running requests would reserve (GB for {label}):", "",
                  md_table(["block size", "running", "peak blocks", "simulated peak blocks", "paged GB",
                            "contiguous GB, same users", "paged ÷ contiguous"], blocks, numeric_from=0)]
    return "\n".join(parts)


def section_concurrent_users(run: dict, out_dir: Path) -> tuple[str, str]:
    rs = sorted_by(results(run, CONCURRENT_USERS), "budget_tokens", "block_size", "max_seq_len")
    title = CONCURRENT_TITLE
    if not rs:
        return title, NOT_IN_RUN_PLOT
    return title, "\n".join([concurrent_users_body(rs), "",
                             plot_link(plot_concurrent_users(rs, out_dir), "concurrent users")])


def _hit_rate(r: Result) -> float | None:
    if r.metric("hit_rate_pct") is not None:
        return r.metric("hit_rate_pct")
    q = r.metric("prefix_queries")
    return 100 * r.metric("prefix_hits") / q if q and r.metric("prefix_hits") is not None else None


def _savings_pct(off: Result | None, on: Result | None) -> float | None:
    """Blocks saved by prefix caching, % of the blocks held without it."""
    share = ratio(on.metric("peak_blocks"), off.metric("peak_blocks")) if off and on else None
    return None if share is None else 100 * (1 - share)


PREFIX_TITLE = "Prefix sharing"


def prefix_sharing_body(pairs, model=REFERENCE_MODEL) -> str:
    label, model = model
    bpt = bytes_per_token(model)
    rows = []
    for (bs, users, shared, unique), off, on in pairs:
        for r, state in ((off, "off"), (on, "on")):
            if r is None:
                continue
            saving = _savings_pct(off, on) if r is on else None
            rows.append([fmt(bs), fmt(users), f"{fmt(shared)} + {fmt(unique)}", state, fmt(r.metric("peak_blocks")),
                         fmt(r.metric("predicted_blocks")), fmt(block_gb(r.metric("peak_blocks"), bs, bpt), 2),
                         fmt(_hit_rate(r), 1, True), fmt(saving, 1, True)])
    headers = ["block size", "users", "shared + unique tokens", "prefix caching", "peak blocks",
               "predicted blocks", f"KV GB ({label})", "prefix hit rate", "savings"]
    note = "Savings = 1 − peak blocks with caching on ÷ peak blocks with caching off, same workload."
    return "\n".join([note, "", md_table(headers, rows, numeric_from=4)])


def section_prefix_sharing(run: dict, out_dir: Path) -> tuple[str, str]:
    pairs = prefix_pairs(results(run, PREFIX_SHARING))
    title = PREFIX_TITLE
    if not pairs:
        return title, NOT_IN_RUN_PLOT
    return title, "\n".join([prefix_sharing_body(pairs), "",
                             plot_link(plot_prefix_sharing(pairs, out_dir), "prefix sharing")])


FRAGMENTATION_TITLE = "Internal fragmentation by block size"


def fragmentation_body(rs: list[Result], model=REFERENCE_MODEL) -> str:
    label, model = model
    bpt = bytes_per_token(model)
    rows = []
    for r in rs:
        bs, peak, held = r.param("block_size"), r.metric("peak_blocks"), r.metric("tokens_held")
        slots = peak * bs if peak is not None and is_number(bs) else None
        wasted = slots - held if slots is not None and held is not None else None
        rows.append([fmt(bs), fmt(held), fmt(peak), fmt(r.metric("predicted_peak_blocks")), fmt(slots), fmt(wasted),
                     fmt(wasted * bpt / GB if wasted is not None else None, 3), fmt(r.metric("paged_waste_pct"), 2, True)])
    note = "Wasted tokens = peak blocks × block size − tokens held: the empty tail of each request's last block."
    headers = ["block size", "tokens held", "peak blocks", "predicted blocks", "allocated slots", "wasted tokens",
               f"wasted GB ({label})", "internal fragmentation"]
    return "\n".join([note, "", md_table(headers, rows, numeric_from=0)])


def section_fragmentation(run: dict, out_dir: Path) -> tuple[str, str]:
    rs = sorted_by(results(run, MEMORY_WASTE), "block_size")
    title = FRAGMENTATION_TITLE
    if not rs:
        return title, NOT_IN_RUN
    return title, fragmentation_body(rs)


def section_block_counts(run: dict, out_dir: Path) -> tuple[str, str]:
    rs = sorted_by(results(run, BLOCK_COUNTS), "model", "kv_budget_bytes", "block_size")
    title = "Block pool size for a KV budget"
    if not rs:
        return title, NOT_IN_RUN
    rows = []
    for r in rs:
        got, want = r.metric("num_gpu_blocks"), r.metric("predicted_blocks")
        budget = r.param("kv_budget_bytes")
        rows.append([str(r.param("model")), fmt(r.param("block_size")), fmt(budget / GIB if is_number(budget) else None, 2),
                     fmt(got), fmt(want), fmt(got - want if None not in (got, want) else None),
                     fmt(r.metric("kv_cache_bytes") / GIB if r.metric("kv_cache_bytes") is not None else None, 2)])
    headers = ["model", "block size", "KV budget GiB", "vLLM blocks", "predicted blocks", "Δ", "KV cache GiB"]
    return title, md_table(headers, rows)
