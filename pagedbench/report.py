"""Markdown report and PNG plots from a run's --metrics-json file.

    python -m pagedbench report RUN.json [RUN.json ...] [--out DIR] [--gpu-hourly-cost 2.50]

One section per kind of test, each found by the test function's name and read
from the params the suite recorded (never from the pytest id). Block and token
counts are converted to bytes here, for LLaMA-7B fp16 and Llama-3.1-8B bf16,
because which model the blocks hold is a matter of arithmetic, not of
measurement: a block of 16 tokens is a block of 16 tokens whatever the model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from .baseline import STATUSES
from .errors import PagedBenchError
from .gate import thresholds
from .kv import GIB, load_shape
from .run_file import OUTCOMES, load_run, merge_runs, validate_run
from .run_file import is_number as _is_number

GB = 1e9            # tables in GB follow the vLLM paper; GiB is said where it is GiB
DASH = "–"          # a cell with no data

# (label, shipped config): the models whose bytes the block counts are converted to.
BYTE_MODELS = (("LLaMA-7B fp16", "llama-7b"), ("Llama-3.1-8B bf16", "llama-3.1-8b"))
REFERENCE_MODEL = BYTE_MODELS[0]  # single-model tables and plots use LLaMA-7B, as the tutorial does


# ---- one test's results, found by function name ------------------------------------

@dataclass(frozen=True)
class Result:
    nodeid: str
    outcome: str
    params: dict
    metrics: dict                 # name -> finite value; NaN/inf are treated as not measured
    units: dict
    series: dict = field(default_factory=dict)

    def m(self, name: str) -> float | None:
        return self.metrics.get(name)

    def p(self, name: str):
        return self.params.get(name)

    def n(self, name: str) -> float | None:
        """A param that arithmetic needs: a positive number, else None (the cell shows '–')."""
        v = self.params.get(name)
        return v if _is_number(v) and v > 0 else None


def function_name(nodeid: str) -> str:
    """'tests/x.py::Cls::test_a[cpu-16]' -> 'test_a' (the id is used for nothing else)."""
    return nodeid.split("::")[-1].split("[", 1)[0]


def results(run: dict, function: str) -> list[Result]:
    out = []
    for nodeid, entry in sorted(run["tests"].items()):
        ms = entry.get("metrics", {})
        if function_name(nodeid) != function or not ms:  # a skipped test recorded nothing to show
            continue
        out.append(Result(
            nodeid=nodeid,
            outcome=entry["outcome"],
            params=entry.get("params", {}),
            metrics={k: float(v["value"]) for k, v in ms.items() if math.isfinite(v["value"])},
            units={k: str(v.get("unit", "")) for k, v in ms.items()},
            series=entry.get("series", {}),
        ))
    return out


def _order(v):
    """Sort key for param values of mixed types: numbers first, in numeric order."""
    return (0, v, "") if _is_number(v) else (1, 0, str(v))


def sorted_by(rs: Iterable[Result], *keys: str) -> list[Result]:
    return sorted(rs, key=lambda r: tuple(_order(r.p(k)) for k in keys))


@cache
def bytes_per_token(model: str) -> int:
    return load_shape(model).kv_bytes_per_token()


# ---- formatting -----------------------------------------------------------------------

def fmt(v, digits: int = 0, pct: bool = False) -> str:
    """Thousands separators, fixed decimals, '–' for no data."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return DASH
    if not _is_number(v):
        return str(v)
    return f"{v:,.{digits}f}" + ("%" if pct else "")


def times(v, digits: int = 1) -> str:
    """A factor: '3.2×', or '–'."""
    return DASH if v is None else fmt(v, digits) + "×"


def ratio(a, b) -> float | None:
    return a / b if a is not None and b else None


def md_table(headers: list[str], rows: list[list[str]], numeric_from: int = 1, text: tuple[int, ...] = ()) -> str:
    """A GitHub markdown table; columns from numeric_from on are right-aligned, except the text ones."""
    align = ["---" if i < numeric_from or i in text else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


NOT_IN_RUN = "_Not in this run._"
NOT_IN_RUN_PLOT = "_Not in this run; plot skipped._"


def plot_link(name: str | None, alt: str, why_missing: str = "not in this run") -> str:
    return f"![{alt}]({name})" if name else f"_Plot skipped: {why_missing}._"


def varying_label(r: Result, rs: list[Result], keys: tuple[str, ...], short: dict | None = None) -> str:
    """Label a result by just the params that differ between rs (keeps plot ticks short)."""
    short = short or {}
    parts = [f"{short.get(k, k)} {fmt(r.p(k))}" for k in keys if len({str(x.p(k)) for x in rs}) > 1]
    return ", ".join(parts) or ", ".join(f"{short.get(k, k)} {fmt(r.p(k))}" for k in keys[:1])


# ---- plotting -------------------------------------------------------------------------

def _figure(width: float = 8.0, height: float = 4.5, ncols: int = 1):
    # The object API with an explicit Agg canvas: no pyplot global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols)
    for ax in (axes if ncols > 1 else [axes]):
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    return fig, axes


def _legend_below(fig, ax, ncols: int) -> None:
    """Legend under the axes: inside, it hides the bar labels of whichever group it lands on."""
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=ncols, fontsize=8, frameon=False)


def _thousands():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:,.0f}")


def _save(fig, out_dir: Path, name: str) -> str:
    fig.savefig(out_dir / name)
    return name


# ---- sections -------------------------------------------------------------------------
# Each section takes (run, out_dir) and returns markdown; plots it makes land in out_dir.

def _waste_rows(r: Result, bpt: int) -> list[tuple[str, float, float]] | None:
    """(approach, allocated bytes, used bytes) for contiguous and paged, or None when incomplete."""
    n, max_len, bs = r.n("n_requests"), r.n("max_seq_len"), r.n("block_size")
    held, peak = r.m("tokens_held"), r.m("peak_blocks")
    if None in (n, max_len, bs, held, peak) or peak == 0:
        return None
    used = held * bpt
    return [("contiguous (max_seq_len each)", n * max_len * bpt, used),
            (f"paged, block {bs}", peak * bs * bpt, used)]


def memory_waste_title(rs: list[Result]) -> str:
    users = {r.p("n_requests") for r in rs}
    n = users.pop() if len(users) == 1 else None
    return f"Memory waste, {n} variable-length users" if _is_number(n) else "Memory waste, variable-length users"


def memory_waste_body(rs: list[Result], models=BYTE_MODELS) -> str:
    """Note and table: allocated, used and wasted bytes, contiguous vs paged, per model and block size."""
    rows = []
    for label, model in models:
        bpt = bytes_per_token(model)
        for r in rs:
            for approach, alloc, used in _waste_rows(r, bpt) or []:
                rows.append(([label] if len(models) > 1 else []) + [
                    fmt(r.p("block_size")), approach, fmt(alloc / GB, 2), fmt(used / GB, 2),
                    fmt((alloc - used) / GB, 2), fmt(100 * (alloc - used) / alloc if alloc else None, 1, True)])
    measured_on = sorted({str(r.p("model")) for r in rs})
    converted = "per model" if len(models) > 1 else f"for {models[0][0]}"
    note = (f"Block counts measured on {', '.join(measured_on)}, converted to bytes {converted} "
            "(GB = 10⁹ bytes). Contiguous = every request reserves max_seq_len slots; "
            "paged = peak blocks × block size.")
    headers = ["block size", "approach", "allocated GB", "used GB", "wasted GB", "waste %"]
    if len(models) > 1:
        headers = ["model", *headers]
    table = md_table(headers, rows, numeric_from=len(headers) - 4) if rows else NOT_IN_RUN
    return "\n".join([note, "", table])


def section_memory_waste(run: dict, out_dir: Path) -> str:
    rs = sorted_by(results(run, "test_memory_waste"), "block_size")
    head = f"## 1. {memory_waste_title(rs)}\n"
    if not rs:
        return head + "\n" + NOT_IN_RUN_PLOT
    return "\n".join([head, memory_waste_body(rs), "", plot_link(plot_memory_waste(rs, out_dir), "memory waste")])


def plot_memory_waste(rs: list[Result], out_dir: Path) -> str | None:
    label, model = REFERENCE_MODEL
    bpt = bytes_per_token(model)
    groups = [(r, _waste_rows(r, bpt)) for r in rs]
    groups = [(r, w) for r, w in groups if w]
    if not groups:
        return None
    fig, ax = _figure()
    width = 0.38
    colors = {"contiguous": ("#c44e52", "#f2b8ba"), "paged": ("#4c72b0", "#b3c6e6")}
    for i, (r, rows) in enumerate(groups):
        for j, (approach, alloc, used) in enumerate(rows):
            kind = "contiguous" if j == 0 else "paged"
            x = i + (j - 0.5) * width
            dark, light = colors[kind]
            first = i == 0  # one legend entry per kind and part
            ax.bar(x, used / GB, width, color=dark, label=f"{kind}: used" if first else None)
            ax.bar(x, (alloc - used) / GB, width, bottom=used / GB, color=light, hatch="//",
                   edgecolor=dark, linewidth=0.5, label=f"{kind}: wasted" if first else None)
            ax.annotate(f"{100 * (alloc - used) / alloc:.1f}% waste", (x, alloc / GB), ha="center",
                        va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(range(len(groups)), [f"block {r.p('block_size')}" for r, _ in groups])
    ax.set_ylabel(f"KV cache, GB ({label})")
    ax.set_title(f"KV memory for {groups[0][0].p('n_requests')} variable-length users: contiguous vs paged")
    ax.set_ylim(0, max(w[0][1] for _, w in groups) / GB * 1.12 or 1)
    _legend_below(fig, ax, ncols=4)
    return _save(fig, out_dir, "memory_waste.png")


CONCURRENT_TITLE = "Concurrent users under a KV budget"


def concurrent_users_body(rs: list[Result], model=REFERENCE_MODEL) -> str:
    """Two tables: how many users fit, and the blocks they held at the peak against pre-allocation."""
    label, model = model
    bpt = bytes_per_token(model)
    rows, blocks = [], []
    for r in rs:
        budget, bs, max_len = r.p("budget_tokens"), r.n("block_size"), r.n("max_seq_len")
        gb = budget * bpt / GB if _is_number(budget) else None
        rows.append([fmt(r.p("block_size")), fmt(budget), fmt(gb, 2), fmt(r.p("max_seq_len")), fmt(r.p("avg_len")),
                     fmt(r.p("n_offered")), fmt(r.m("contiguous_users")), fmt(r.m("predicted_users")),
                     fmt(r.m("sim_peak_running")), fmt(r.m("peak_running")), fmt(r.m("preemptions")),
                     times(ratio(r.m("peak_running"), r.m("contiguous_users")))])
        peak, running = r.m("peak_blocks"), r.m("peak_running")
        if peak is None:
            continue
        contiguous_gb = running * max_len * bpt / GB if None not in (running, max_len) else None
        blocks.append([fmt(r.p("block_size")), fmt(running), fmt(peak), fmt(r.m("sim_peak_blocks")),
                       fmt(_block_gb(peak, bs, bpt), 2), fmt(contiguous_gb, 2),
                       fmt(r.m("paged_vs_contiguous_pct"), 1, True)])
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


def section_concurrent_users(run: dict, out_dir: Path) -> str:
    rs = sorted_by(results(run, "test_concurrent_users"), "budget_tokens", "block_size", "max_seq_len")
    head = f"## 2. {CONCURRENT_TITLE}\n"
    if not rs:
        return head + "\n" + NOT_IN_RUN_PLOT
    return "\n".join([head, concurrent_users_body(rs), "",
                      plot_link(plot_concurrent_users(rs, out_dir), "concurrent users")])


def plot_concurrent_users(rs: list[Result], out_dir: Path) -> str | None:
    bars = (("contiguous_users", "contiguous (max_seq_len each)", "#c44e52"),
            ("predicted_users", "paged, predicted", "#dd8452"),
            ("peak_running", "paged, measured (vLLM)", "#4c72b0"))
    rs = [r for r in rs if any(r.m(k) is not None for k, _, _ in bars)]
    if not rs:
        return None
    fig, ax = _figure()
    width = 0.8 / len(bars)
    for j, (key, name, color) in enumerate(bars):
        xs = [i + (j - 1) * width for i in range(len(rs))]
        ys = [r.m(key) or 0 for r in rs]
        container = ax.bar(xs, ys, width, color=color, label=name)
        ax.bar_label(container, labels=[fmt(r.m(key)) for r in rs], fontsize=8, padding=2)
    keys = ("block_size", "budget_tokens", "max_seq_len", "avg_len")
    short = {"block_size": "block", "budget_tokens": "budget", "max_seq_len": "max len", "avg_len": "avg len"}
    ax.set_xticks(range(len(rs)), [varying_label(r, rs, keys, short) for r in rs])
    budgets = {r.p("budget_tokens") for r in rs}
    budget = "a KV budget"
    if len(budgets) == 1 and _is_number(next(iter(budgets))):
        tokens = budgets.pop()
        label, model = REFERENCE_MODEL
        budget = f"a {tokens:,}-token KV budget ({tokens * bytes_per_token(model) / GB:.2f} GB for {label})"
    ax.set_title(f"Concurrent users under {budget}")
    ax.set_ylabel("requests held at once")
    ax.margins(y=0.1)
    _legend_below(fig, ax, ncols=len(bars))
    return _save(fig, out_dir, "concurrent_users.png")


_PREFIX_KEYS = ("block_size", "n_users", "shared_len", "unique_len")


def _prefix_pairs(rs: list[Result]) -> list[tuple[tuple, Result | None, Result | None]]:
    """(workload params, caching off, caching on) for each workload."""
    pairs: dict[tuple, list] = {}
    for r in rs:
        key = tuple(r.p(k) for k in _PREFIX_KEYS)
        pairs.setdefault(key, [None, None])[1 if r.p("prefix_caching") else 0] = r
    return [(k, off, on) for k, (off, on) in sorted(pairs.items(), key=lambda kv: tuple(map(_order, kv[0])))]


def _hit_rate(r: Result) -> float | None:
    if r.m("hit_rate_pct") is not None:
        return r.m("hit_rate_pct")
    q = r.m("prefix_queries")
    return 100 * r.m("prefix_hits") / q if q and r.m("prefix_hits") is not None else None


def _savings_pct(off: Result | None, on: Result | None) -> float | None:
    """Blocks saved by prefix caching, % of the blocks held without it."""
    share = ratio(on.m("peak_blocks"), off.m("peak_blocks")) if off and on else None
    return None if share is None else 100 * (1 - share)


def _block_gb(blocks, block_size, bpt) -> float | None:
    return blocks * block_size * bpt / GB if blocks is not None and _is_number(block_size) else None


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
            rows.append([fmt(bs), fmt(users), f"{fmt(shared)} + {fmt(unique)}", state, fmt(r.m("peak_blocks")),
                         fmt(r.m("predicted_blocks")), fmt(_block_gb(r.m("peak_blocks"), bs, bpt), 2),
                         fmt(_hit_rate(r), 1, True), fmt(saving, 1, True)])
    headers = ["block size", "users", "shared + unique tokens", "prefix caching", "peak blocks",
               "predicted blocks", f"KV GB ({label})", "prefix hit rate", "savings"]
    note = "Savings = 1 − peak blocks with caching on ÷ peak blocks with caching off, same workload."
    return "\n".join([note, "", md_table(headers, rows, numeric_from=4)])


def section_prefix_sharing(run: dict, out_dir: Path) -> str:
    pairs = _prefix_pairs(results(run, "test_prefix_sharing"))
    head = f"## 3. {PREFIX_TITLE}\n"
    if not pairs:
        return head + "\n" + NOT_IN_RUN_PLOT
    return "\n".join([head, prefix_sharing_body(pairs), "",
                      plot_link(plot_prefix_sharing(pairs, out_dir), "prefix sharing")])


def plot_prefix_sharing(pairs, out_dir: Path) -> str | None:
    label, model = REFERENCE_MODEL
    bpt = bytes_per_token(model)
    if not pairs:
        return None
    fig, ax = _figure()
    width = 0.38
    all_keys = [k for k, _, _ in pairs]
    for i, ((bs, users, shared, unique), off, on) in enumerate(pairs):
        gb = {s: _block_gb(r.m("peak_blocks"), bs, bpt) if r else None for s, r in (("off", off), ("on", on))}
        for j, (state, color) in enumerate((("off", "#c44e52"), ("on", "#4c72b0"))):
            if gb[state] is None:
                continue
            c = ax.bar(i + (j - 0.5) * width, gb[state], width, color=color,
                       label=f"prefix caching {state}" if i == 0 else None)
            ax.bar_label(c, labels=[f"{gb[state]:.2f} GB"], fontsize=8, padding=2)
        if gb["off"] and gb["on"] is not None:
            ax.annotate(f"−{100 * (1 - gb['on'] / gb['off']):.0f}% vs off", (i + 0.5 * width, gb["on"]), ha="center",
                        va="bottom", fontsize=9, fontweight="bold", xytext=(0, 14), textcoords="offset points")

    def workload(users, shared, unique):
        return f"{users} users × ({shared} shared + {unique} own tokens)"

    one_workload = len({k[1:] for k in all_keys}) == 1
    one_block = len({k[0] for k in all_keys}) == 1
    ticks = ["\n".join(([] if one_block else [f"block {bs}"]) + ([] if one_workload else [workload(u, sh, un)]))
             or f"block {bs}" for bs, u, sh, un in all_keys]
    ax.set_xticks(range(len(pairs)), ticks, fontsize=8 if one_workload else 7)
    subtitle = f"\n{workload(*all_keys[0][1:])}" if one_workload else ""
    ax.set_xlim(-0.75, len(pairs) - 0.25)  # one workload alone would otherwise get page-wide bars
    ax.set_ylabel(f"peak KV, GB ({label})")
    ax.set_title("Prefix sharing: KV held with prefix caching off vs on" + subtitle)
    ax.margins(y=0.2)
    _legend_below(fig, ax, ncols=2)
    return _save(fig, out_dir, "prefix_sharing.png")


FRAGMENTATION_TITLE = "Internal fragmentation by block size"


def fragmentation_body(rs: list[Result], model=REFERENCE_MODEL) -> str:
    label, model = model
    bpt = bytes_per_token(model)
    rows = []
    for r in rs:
        bs, peak, held = r.p("block_size"), r.m("peak_blocks"), r.m("tokens_held")
        slots = peak * bs if peak is not None and _is_number(bs) else None
        wasted = slots - held if slots is not None and held is not None else None
        rows.append([fmt(bs), fmt(held), fmt(peak), fmt(r.m("predicted_peak_blocks")), fmt(slots), fmt(wasted),
                     fmt(wasted * bpt / GB if wasted is not None else None, 3), fmt(r.m("paged_waste_pct"), 2, True)])
    note = "Wasted tokens = peak blocks × block size − tokens held: the empty tail of each request's last block."
    headers = ["block size", "tokens held", "peak blocks", "predicted blocks", "allocated slots", "wasted tokens",
               f"wasted GB ({label})", "internal fragmentation"]
    return "\n".join([note, "", md_table(headers, rows, numeric_from=0)])


def section_fragmentation(run: dict, out_dir: Path) -> str:
    rs = sorted_by(results(run, "test_memory_waste"), "block_size")
    head = f"## 4. {FRAGMENTATION_TITLE}\n"
    if not rs:
        return head + "\n" + NOT_IN_RUN
    return "\n".join([head, fragmentation_body(rs)])


def section_block_counts(run: dict, out_dir: Path) -> str:
    rs = sorted_by(results(run, "test_block_counts"), "model", "kv_budget_bytes", "block_size")
    head = "## 5. Block pool size for a KV budget\n"
    if not rs:
        return head + "\n" + NOT_IN_RUN
    rows = []
    for r in rs:
        got, want = r.m("num_gpu_blocks"), r.m("predicted_blocks")
        budget = r.p("kv_budget_bytes")
        rows.append([str(r.p("model")), fmt(r.p("block_size")), fmt(budget / GIB if _is_number(budget) else None, 2),
                     fmt(got), fmt(want), fmt(got - want if None not in (got, want) else None),
                     fmt(r.m("kv_cache_bytes") / GIB if r.m("kv_cache_bytes") is not None else None, 2)])
    headers = ["model", "block size", "KV budget GiB", "vLLM blocks", "predicted blocks", "Δ", "KV cache GiB"]
    return "\n".join([head, md_table(headers, rows)])


def section_hf_generate(run: dict, out_dir: Path) -> str:
    rs = sorted_by(results(run, "test_hf_generate"), "model", "cache", "batch", "new_tokens")
    head = "## 6. Hugging Face generate (baseline)\n"
    if not rs:
        return head + "\n" + NOT_IN_RUN
    rows = [[str(r.p("model")), str(r.p("cache")), fmt(r.p("batch")), fmt(r.p("new_tokens")), fmt(r.m("tok_per_s"), 1),
             fmt(r.m("peak_alloc_gib"), 2), fmt(r.m("nvml_peak_gib"), 2), fmt(r.m("kv_cache_gib"), 2)] for r in rs]
    headers = ["model", "cache", "batch", "new tokens", "tok/s", "peak alloc GiB", "NVML peak GiB", "KV cache GiB"]
    return "\n".join([head, md_table(headers, rows, numeric_from=2)])


def section_vllm_throughput(run: dict, out_dir: Path) -> str:
    rs = sorted_by(results(run, "test_vllm_throughput"), "model", "workload")
    head = "## 7. vLLM offline throughput\n"
    if not rs:
        return head + "\n" + NOT_IN_RUN
    rows = [[str(r.p("model")), str(r.p("workload")), fmt(r.p("requests")), fmt(r.m("output_tok_per_s"), 1),
             fmt(r.m("total_tok_per_s"), 1), fmt(r.m("req_per_s"), 2), fmt(r.m("nvml_peak_gib"), 2),
             times(r.m("speedup_vs_hf"))]
            for r in rs]
    headers = ["model", "workload", "requests", "output tok/s", "total tok/s", "req/s", "NVML peak GiB",
               "speed-up vs HF"]
    note = ("Speed-up vs HF = output tok/s ÷ HF generate's (dynamic cache, batch 16) on the same 16 requests; "
            "recorded for that workload only. NVML peak includes vLLM's pre-allocated KV pool.")
    return "\n".join([head, note, "", md_table(headers, rows, numeric_from=2)])


def section_max_num_seqs(run: dict, out_dir: Path) -> str:
    rs = [r for r in sorted_by(results(run, "test_max_num_seqs_sweep"), "max_num_seqs")]
    head = "## 8. Throughput vs max-num-seqs\n"
    if not rs:
        return head + "\n" + NOT_IN_RUN_PLOT
    rows = [[fmt(r.p("max_num_seqs")), fmt(r.p("requests")), fmt(r.m("output_tok_per_s"), 1)] for r in rs]
    parts = [head]
    sat = saturation(rs)
    if sat is not None:
        largest = max((r.p("max_num_seqs") for r in rs if _is_number(r.p("max_num_seqs"))), default=None)
        parts += [f"Saturation (first max-num-seqs within 10 % of the best throughput): **{fmt(sat)}**"
                  + (" — the largest point swept: throughput was still rising." if sat == largest else "."), ""]
    return "\n".join(parts + [md_table(["max-num-seqs", "requests", "output tok/s"], rows, numeric_from=0), "",
                              plot_link(plot_max_num_seqs(rs, out_dir), "throughput vs max-num-seqs")])


def saturation(rs: list[Result]):
    """The sweep's saturation point as the test recorded it after its largest point (it grows with the sweep)."""
    recorded = [r for r in rs if _is_number(r.p("max_num_seqs")) and _is_number(r.p("saturation_max_num_seqs"))]
    return max(recorded, key=lambda r: r.p("max_num_seqs")).p("saturation_max_num_seqs") if recorded else None


def plot_max_num_seqs(rs: list[Result], out_dir: Path) -> str | None:
    pts = [(r.p("max_num_seqs"), r.m("output_tok_per_s")) for r in rs]
    pts = [(x, y) for x, y in pts if _is_number(x) and x > 0 and y is not None]
    if not pts:
        return None
    fig, ax = _figure()
    xs, ys = zip(*pts)
    ax.plot(xs, ys, marker="o", color="#4c72b0")
    for x, y in pts:
        ax.annotate(f"{y:,.0f}", (x, y), fontsize=8, ha="center", xytext=(0, 6), textcoords="offset points")
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.minorticks_off()
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_xlabel("max-num-seqs (log scale)")
    ax.set_ylabel("output tokens / s")
    ax.yaxis.set_major_formatter(_thousands())
    ax.set_ylim(0, max(max(ys) * 1.15, 1))
    sat = saturation(rs)
    if _is_number(sat) and sat in xs and sat < max(xs):
        ax.axvline(sat, color="grey", linestyle=":", linewidth=1)
        ax.annotate("saturation", (sat, 0), fontsize=8, color="grey", rotation=90, xytext=(3, 6),
                    textcoords="offset points", va="bottom")
    models = {str(r.p("model")) for r in rs if r.p("model")}
    ax.set_title("vLLM throughput vs max-num-seqs" + (f" ({models.pop()})" if len(models) == 1 else ""))
    return _save(fig, out_dir, "max_num_seqs.png")


PAGED_DECODE, CONTIGUOUS_DECODE, PAGED_PREFILL = "test_paged_decode", "test_contiguous_decode", "test_paged_prefill"


def _pick(rs: list[Result], key: str, preferred):
    """preferred where some result has it, else the largest number (else the first value)."""
    values = {r.p(key) for r in rs}
    if preferred in values:
        return preferred
    numeric = [v for v in values if _is_number(v)]
    return max(numeric) if numeric else min(values, key=_order)


def decode_slice(paged: list[Result], contiguous: list[Result]) -> tuple[list[Result], list[Result], dict]:
    """The rows the kernel plot compares: batch 32 (else largest), block 16, shuffled order, where present.

    Contiguous kernels have no block size or order; they are sliced by batch alone.
    """
    chosen = {"batch": _pick(paged or contiguous, "batch", 32)}
    paged = [r for r in paged if r.p("batch") == chosen["batch"]]
    for key, preferred in (("block_size", 16), ("order", "shuffled")):
        if paged:
            chosen[key] = _pick(paged, key, preferred)
            paged = [r for r in paged if r.p(key) == chosen[key]]
    contiguous = [r for r in contiguous if r.p("batch") == chosen["batch"]]
    return sorted_by(paged, "impl", "context"), sorted_by(contiguous, "impl", "context"), chosen


def paged_overhead_pct(r: Result) -> float | None:
    """Paged latency over the contiguous baseline's, − 1, in %; negative = paged was faster."""
    v = r.p("paged_overhead_pct")
    if _is_number(v) and math.isfinite(v):
        return v
    ratio_ = r.m("paged_to_contiguous")
    return None if ratio_ is None else 100 * (ratio_ - 1)


def _signed_pct(v) -> str:
    return DASH if v is None else f"{round(v, 1) + 0.0:+.1f}%"  # + 0.0: no "-0.0%"


def section_decode_attention(run: dict, out_dir: Path) -> str:
    paged, contiguous = results(run, PAGED_DECODE), results(run, CONTIGUOUS_DECODE)
    head = "## 9. Decode attention kernels\n"
    if not paged and not contiguous:
        return head + "\n" + NOT_IN_RUN_PLOT
    shown_paged, shown_contiguous, chosen = decode_slice(paged, contiguous)
    baselines = sorted({str(r.p("contiguous_baseline")) for r in paged if r.p("contiguous_baseline")})

    contiguous_ids = {r.nodeid for r in contiguous}

    def row(r: Result, full: bool) -> list[str]:
        kind = "contiguous" if r.nodeid in contiguous_ids else "paged"
        lead = [str(r.p("impl")), kind]
        if full:
            lead += [fmt(r.p("batch")), fmt(r.p("block_size")) if kind == "paged" else DASH,
                     str(r.p("order")) if kind == "paged" else DASH]
        return lead + [fmt(r.p("context")), fmt(r.m("latency_us"), 1), fmt(r.m("kv_gbps"), 1),
                       fmt(r.m("pct_of_copy_bw"), 1, True),
                       _signed_pct(paged_overhead_pct(r)) if kind == "paged" else DASH]

    tail = ["context", "latency µs", "KV GB/s", "% of copy bandwidth", "paged overhead"]
    where = ", ".join(f"{k} = {v}" for k, v in chosen.items())
    copy = {r.p("copy_gbps") for r in paged + contiguous if _is_number(r.p("copy_gbps"))}
    note = (f"Shown: {where}. KV GB/s = K and V bytes read per decode step ÷ latency (one layer, "
            "CUDA-event median). Paged overhead = paged latency ÷ latency of the contiguous kernel "
            f"({', '.join(baselines) or DASH}) at the same batch and context − 1; negative = paged was faster.")
    if len(copy) == 1:
        note += f" Copy bandwidth measured on this GPU: {fmt(copy.pop())} GB/s."
    shown = shown_paged + shown_contiguous
    parts = [head, note, "", md_table(["impl", "kind", *tail], [row(r, False) for r in shown], text=(1,)), "",
             plot_link(plot_decode(shown_paged, shown_contiguous, chosen, out_dir), "decode latency vs context")]
    every = (sorted_by(paged, "impl", "batch", "block_size", "order", "context")
             + sorted_by(contiguous, "impl", "batch", "context"))
    if len(shown) < len(every):
        parts += ["", f"<details><summary>All {len(every)} kernel configurations</summary>", "",
                  md_table(["impl", "kind", "batch", "block size", "order", *tail], [row(r, True) for r in every],
                           text=(1, 4)), "", "</details>"]
    return "\n".join(parts)


def plot_decode(paged: list[Result], contiguous: list[Result], chosen: dict, out_dir: Path) -> str | None:
    """Latency (log-log), paged overhead and KV bandwidth vs context; contiguous kernels dashed."""
    def usable(rs):
        return [r for r in rs if _is_number(r.p("context")) and r.p("context") > 0]

    paged, contiguous = usable(paged), usable(contiguous)
    if not any(r.m("latency_us") is not None for r in paged + contiguous):
        return None
    from matplotlib import colormaps

    fig, (lat, over, bw) = _figure(14, 4.8, ncols=3)
    impls = sorted({str(r.p("impl")) for r in paged}) + sorted({str(r.p("impl")) for r in contiguous})
    colors = dict(zip(impls, colormaps["tab10"].colors))
    for rs, style in ((paged, "-"), (contiguous, "--")):
        for impl in sorted({str(r.p("impl")) for r in rs}):
            mine = [r for r in rs if str(r.p("impl")) == impl]
            label = f"{impl} ({'paged' if style == '-' else 'contiguous'})"
            for ax, value in ((lat, lambda r: r.m("latency_us")), (bw, lambda r: r.m("kv_gbps")),
                              (over, paged_overhead_pct if style == "-" else lambda r: None)):
                pts = [(r.p("context"), value(r)) for r in mine if value(r) is not None]
                if pts:
                    ax.plot(*zip(*pts), style, marker="o", markersize=4, color=colors[impl], label=label)
    contexts = sorted({r.p("context") for r in paged + contiguous})
    for ax in (lat, over, bw):
        ax.set_xscale("log", base=2)
        ax.set_xticks(contexts, [f"{c:,}" for c in contexts], fontsize=8)
        ax.minorticks_off()
        ax.grid(True, axis="x", alpha=0.3)
        ax.set_xlabel("context length, tokens (log scale)")
    lats = [r.m("latency_us") for r in paged + contiguous if r.m("latency_us") is not None]
    positive = all(v > 0 for v in lats)
    lat.set_yscale("log" if positive else "linear")  # a log axis cannot show a zero from a broken run
    if positive:  # 20, 50, 100, 200, ... µs instead of bare powers of ten
        from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

        lat.yaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
        lat.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        lat.yaxis.set_minor_locator(NullLocator())
    lat.set_ylabel("latency per decode step, µs" + (" (log scale)" if positive else ""))
    lat.set_title("Decode attention latency")
    over.axhline(0, color="black", linewidth=0.8)
    over.set_ylabel("paged overhead vs contiguous, %")
    over.set_title("Cost of the block table")
    copy = {r.p("copy_gbps") for r in paged + contiguous if _is_number(r.p("copy_gbps"))}
    if len(copy) == 1:
        gbps = copy.pop()
        bw.axhline(gbps, color="grey", linestyle=":", linewidth=1)
        bw.annotate(f"measured copy bandwidth, {gbps:,.0f} GB/s", (contexts[0], gbps), fontsize=7, color="grey",
                    xytext=(0, -3), textcoords="offset points", va="top")
    bw.set_ylabel("KV read bandwidth, GB/s")
    bw.set_ylim(bottom=0)
    bw.yaxis.set_major_formatter(_thousands())
    bw.set_title("Achieved KV bandwidth")
    _legend_below(fig, lat if lat.get_legend_handles_labels()[0] else bw, ncols=len(impls))
    fig.suptitle("Llama-3.1-8B attention, one layer; shown: "
                 + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in chosen.items()), fontsize=9)
    return _save(fig, out_dir, "decode_attention.png")


def section_prefill(run: dict, out_dir: Path) -> str:
    rs = sorted_by(results(run, PAGED_PREFILL), "batch", "context", "block_size")
    head = "## 10. Paged prefill (chunked)\n"
    if not rs:
        return head + "\n" + NOT_IN_RUN
    impls = sorted({str(r.p("impl")) for r in rs if r.p("impl")})
    note = (f"The last query-length tokens of each sequence attend causally to the whole context through the "
            f"block table ({', '.join(impls) or DASH}). TFLOP/s counts QKᵀ and PV of the causal tail.")
    rows = [[fmt(r.p("batch")), fmt(r.p("context")), fmt(r.p("block_size")), fmt(r.p("query_len")),
             fmt(r.m("latency_us"), 1), fmt(r.m("tflops"), 1)] for r in rs]
    return "\n".join([head, note, "", md_table(["batch", "context", "block size", "query len", "latency µs",
                                                "TFLOP/s"], rows, numeric_from=0)])


def section_memory_timeline(run: dict, out_dir: Path) -> str:
    head = "## 11. Memory over time\n"
    name = plot_memory_timeline(run, out_dir)
    return head + "\n" + (plot_link(name, "memory timeline") if name else NOT_IN_RUN_PLOT)


MAX_TIMELINES = 8  # more lines than this are unreadable on one plot


def plot_memory_timeline(run: dict, out_dir: Path) -> str | None:
    lines = [(nodeid.split("::")[-1], e["series"]["memory_gib"]) for nodeid, e in sorted(run["tests"].items())
             if e.get("series", {}).get("memory_gib")]
    if not lines:
        return None
    fig, ax = _figure()
    for label, points in lines[:MAX_TIMELINES]:
        ax.plot(*zip(*points), label=label, linewidth=1.2)
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_xlabel("time since test start, s")
    ax.set_ylabel("GPU memory, GiB")
    ax.set_ylim(bottom=0)
    title = "Memory over time" + (f" (first {MAX_TIMELINES} of {len(lines)} tests)" if len(lines) > MAX_TIMELINES else "")
    ax.set_title(title)
    _legend_below(fig, ax, ncols=2)  # inside, it hides the lines near the top (vLLM's pre-allocated pool)
    return _save(fig, out_dir, "memory_timeline.png")


# Every file a report may write besides report.md.
PLOTS = ("memory_waste.png", "concurrent_users.png", "prefix_sharing.png", "max_num_seqs.png",
         "decode_attention.png", "memory_timeline.png")

SECTIONS: tuple[Callable[[dict, Path], str], ...] = (
    section_memory_waste, section_concurrent_users, section_prefix_sharing, section_fragmentation,
    section_block_counts, section_hf_generate, section_vllm_throughput, section_max_num_seqs,
    section_decode_attention, section_prefill, section_memory_timeline,
)


# ---- the tutorial's "Real-World Impact" table, from measured figures only -------------

DEFAULT_GPU_HOURLY_COST = 2.50   # $ per GPU-hour; --gpu-hourly-cost changes it
SECONDS_PER_DAY = 86_400
CAPACITY_TITLE = "Real-World Impact: capacity and cost"
VARIABLE_WORKLOADS = ("uniform", "sharegpt")  # test_vllm_throughput's variable-length workload


def check_hourly_cost(cost) -> float:
    if not _is_number(cost) or not math.isfinite(cost) or cost <= 0:
        raise PagedBenchError(f"GPU hourly cost must be a positive number of $ per hour, got {cost!r}")
    return float(cost)


def _concurrent_pick(run: dict) -> Result | None:
    """test_concurrent_users at block size 16 if present, else the smallest block size."""
    rs = sorted_by(results(run, "test_concurrent_users"), "block_size", "budget_tokens", "max_seq_len")
    return next((r for r in rs if r.p("block_size") == 16), rs[0] if rs else None)


def _variable_throughput(run: dict) -> Result | None:
    rs = [r for r in sorted_by(results(run, "test_vllm_throughput"), "model", "workload")
          if str(r.p("workload") or "").startswith(VARIABLE_WORKLOADS) and r.m("req_per_s") is not None]
    return rs[0] if rs else None


def _hf_static(run: dict) -> Result | None:
    """HF generate() with the static cache at the largest batch that has a tok/s and a token count."""
    rs = [r for r in results(run, "test_hf_generate") if r.p("cache") == "static"
          and r.n("batch") is not None and r.n("new_tokens") is not None and r.m("tok_per_s") is not None]
    return max(rs, key=lambda r: r.p("batch")) if rs else None


def capacity_figures(run: dict) -> tuple[dict, list[str], dict]:
    """({standard, paged}: (max batch, req/s)), the measurements missing, and where the figures came from."""
    users, vllm, hf = _concurrent_pick(run), _variable_throughput(run), _hf_static(run)
    missing = []
    if users is None:
        missing.append("test_concurrent_users (max batch, both approaches)")
    else:
        for key, who in (("contiguous_users", "standard"), ("peak_running", "paged")):
            if users.m(key) is None:
                missing.append(f"{key} of test_concurrent_users, block {fmt(users.p('block_size'))} ({who} max batch)")
    if vllm is None:
        missing.append("req_per_s of test_vllm_throughput on the variable-length workload "
                       f"({' or '.join(w + '*' for w in VARIABLE_WORKLOADS)}; paged requests/s)")
    if hf is None:
        missing.append("tok_per_s of test_hf_generate with the static cache (standard requests/s)")
    figures = {
        "standard": (users.m("contiguous_users") if users else None,
                     hf.m("tok_per_s") / hf.p("new_tokens") if hf else None),
        "paged": (users.m("peak_running") if users else None, vllm.m("req_per_s") if vllm else None),
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
    budget, max_len = users.p("budget_tokens"), users.p("max_seq_len")
    out_per_req = ratio(vllm.m("output_tok_per_s"), vllm.m("req_per_s"))
    caption = (f"Requests/day = requests/s × {SECONDS_PER_DAY:,}; cost per 1M requests = "
               f"**{_hourly_text(hourly)} per GPU-hour** (`--gpu-hourly-cost`) ÷ (requests/s × 3,600) × 10⁶.")
    notes = [
        f"- **Max batch:** test_concurrent_users, block {fmt(users.p('block_size'))}, a {fmt(budget)}-token KV "
        f"budget: standard = the requests that fit with max_seq_len ({fmt(max_len)}) pre-allocated each; "
        "paged = the most requests vLLM ran at once.",
        f"- **Paged requests/s:** vLLM offline throughput, {vllm.p('model')}, {vllm.p('workload')} workload "
        f"({fmt(vllm.p('requests'))} requests"
        + (f", {fmt(out_per_req)} output tokens per request" if out_per_req is not None else "") + ").",
        f"- **Standard requests/s:** HF `generate()`, {hf.p('model')}, with a pre-allocated static cache at batch "
        f"{fmt(hf.p('batch'))} (the largest measured): tok/s ÷ {fmt(hf.p('new_tokens'))} new tokens per request.",
        "- The requests/s columns come from the throughput tests, which are not held to the max-batch column's "
        "KV budget, and the two engines served different requests"
        + (f" ({fmt(out_per_req)} vs {fmt(hf.p('new_tokens'))} output tokens each)" if out_per_req is not None
           else "")
        + ": the ratios compare the two measured set-ups, not identical work.",
    ]
    headers = ["approach", "max batch under the budget", "requests/s", "requests/day", "cost per 1M requests"]
    return "\n".join([caption, "", md_table(headers, rows), "", *notes])


def section_capacity(run: dict, out_dir: Path, gpu_hourly_cost: float = DEFAULT_GPU_HOURLY_COST) -> str:
    return f"## {CAPACITY_TITLE}\n\n" + capacity_body(run, gpu_hourly_cost)


# ---- header, comparisons, headline figures ------------------------------------------

def _gpu_line(gpu: dict) -> str:
    bits = []
    if _is_number(gpu.get("memory_bytes")) and gpu["memory_bytes"]:
        bits.append(f"{gpu['memory_bytes'] / GIB:.0f} GiB")
    for key in ("driver", "cuda"):
        if gpu.get(key):
            bits.append(f"{key} {gpu[key]}")
    if _is_number(gpu.get("count")) and gpu["count"] > 1:
        bits.append(f"{gpu['count']} GPUs")
    return str(gpu.get("name") or "unknown") + (f" ({', '.join(bits)})" if bits else "")


def header(run: dict, sources: list) -> str:
    outcomes = {o: 0 for o in OUTCOMES}
    for e in run["tests"].values():
        outcomes[e["outcome"]] += 1
    versions = ", ".join(f"{k} {v}" for k, v in sorted(run["versions"].items())) or DASH
    lines = [f"# pagedbench report: {run['slug']}", "",
             f"- **GPU:** {_gpu_line(run['gpu'])}",
             f"- **Versions:** {versions}",
             f"- **Run:** {run.get('started') or DASH} → {run.get('finished') or DASH}",
             f"- **Tests:** {', '.join(f'{n} {o}' for o, n in outcomes.items())}"]
    if sources:
        lines.append(f"- **From:** {', '.join(f'`{s}`' for s in sources)}")
    if run.get("interrupted"):
        lines += ["", "> **Warning:** the run was interrupted; sections may be incomplete."]
    return "\n".join(lines)


def comparisons_summary(run: dict) -> str:
    counts = {s: 0 for s in STATUSES[:4]}  # ok, regressed, improved, new; not_compared and unstable when present
    notable = []
    for nodeid, e in sorted(run["tests"].items()):
        for c in e.get("comparisons", []):
            counts[c["status"]] = counts.get(c["status"], 0) + 1
            if c["status"] in ("regressed", "improved"):
                notable.append((nodeid.split("::")[-1], c))
    parts = ["## Comparison with the stored baseline", "",
             md_table(list(counts), [[str(n) for n in counts.values()]], numeric_from=0)]
    if not any(counts.values()):
        parts += ["", "_No comparisons in this run (no baseline for this GPU, or compare was off)._"]
    bands = thresholds(c for e in run["tests"].values() for c in e.get("comparisons", []))
    if bands:
        parts += ["", "Detection thresholds (the smallest change the gate flags, per test function and metric):", "",
                  md_table(["test", "metric", "cases", "lowest", "median", "highest"],
                           [[f, m, str(len(ts)), *(f"±{100 * t:.1f}%" for t in (ts[0], ts[len(ts) // 2], ts[-1]))]
                            for (f, m), ts in bands.items()], numeric_from=2)]
    if notable:
        rows = []
        for test, c in notable:
            base, now = c.get("baseline"), c.get("now")
            change = f"{100 * (now - base) / base:+.1f}%" if _is_number(base) and base and _is_number(now) else DASH
            tol = c.get("tolerance")
            rows.append([test, str(c.get("metric")), fmt(base, 2), fmt(now, 2), change,
                         "±" + fmt(100 * tol, 1, True) if _is_number(tol) else DASH,
                         "**REGRESSED**" if c["status"] == "regressed" else "improved"])
        parts += ["", md_table(["test", "metric", "baseline", "now", "change", "tolerance", "status"], rows,
                               numeric_from=2, text=(6,))]
    return "\n".join(parts)


def _best(rs: list[Result], metric: str) -> Result | None:
    with_value = [r for r in rs if r.m(metric) is not None]
    return max(with_value, key=lambda r: r.m(metric)) if with_value else None


FIGURES_HEADERS = ["GPU", "vLLM output tok/s", "HF tok/s", "speed-up", "blocks per block size", "measured waste",
                   "best decode GB/s"]
FIGURES_TEXT_COLUMNS = (4, 5, 6)


def figures_table(run: dict) -> str:
    """One-row markdown table of a run's headline figures, for the README; '–' where absent."""
    return md_table(FIGURES_HEADERS, [figures_row(run)], text=FIGURES_TEXT_COLUMNS)


def figures_row(run: dict) -> list[str]:
    """The cells of figures_table's row, under FIGURES_HEADERS (the README stacks several GPUs' rows)."""
    vllm = _best(results(run, "test_vllm_throughput"), "output_tok_per_s")
    hf = _best(results(run, "test_hf_generate"), "tok_per_s")
    speedup = vllm.m("speedup_vs_hf") if vllm else None
    if speedup is None:  # the best vLLM row may lack it; any recorded speed-up still says something
        speedup = max((r.m("speedup_vs_hf") for r in results(run, "test_vllm_throughput")
                       if r.m("speedup_vs_hf") is not None), default=None)

    counts = results(run, "test_block_counts")
    models = {str(r.p("model")) for r in counts}
    model = "llama-3.1-8b" if "llama-3.1-8b" in models else min(models, default=None)
    mine = [r for r in sorted_by(counts, "block_size") if str(r.p("model")) == model
            and r.m("num_gpu_blocks") is not None]
    blocks = "; ".join(f"{r.p('block_size')}: {fmt(r.m('num_gpu_blocks'))}" for r in mine) or DASH
    budgets = {r.p("kv_budget_bytes") for r in mine}
    if len(budgets) == 1 and _is_number(budget := budgets.pop()):  # the pool of a test budget, not the whole GPU
        blocks += f" (in {budget / GIB:,.{0 if budget % GIB == 0 else 2}f} GiB)"

    waste = DASH
    mw = sorted_by(results(run, "test_memory_waste"), "block_size")
    if mw:
        r = next((x for x in mw if x.p("block_size") == 16), mw[0])
        if r.m("paged_waste_pct") is not None:
            contiguous = r.m("contiguous_waste_pct")
            waste = (f"paged {r.m('paged_waste_pct'):.1f}% (block {r.p('block_size')})"
                     + (f" vs contiguous {contiguous:.1f}%" if contiguous is not None else ""))

    dec = _best(results(run, PAGED_DECODE), "kv_gbps")
    decode = f"{dec.m('kv_gbps'):,.0f} ({dec.p('impl')})" if dec else DASH
    return [run["slug"], fmt(vllm.m("output_tok_per_s") if vllm else None),
            fmt(hf.m("tok_per_s") if hf else None), times(speedup),
            blocks, waste, decode]


# ---- entry points -------------------------------------------------------------------

def render(run: dict, out_dir: Path, sources: list | None = None,
           gpu_hourly_cost: float = DEFAULT_GPU_HOURLY_COST) -> str:
    """The whole markdown document; writes the plots into out_dir on the way."""
    parts = [header(run, sources or []), comparisons_summary(run), "## Headline figures\n\n" + figures_table(run),
             section_capacity(run, out_dir, gpu_hourly_cost)]
    parts += [section(run, out_dir) for section in SECTIONS]
    return "\n\n".join(parts) + "\n"


def write_report(run: dict, out_dir: str | Path, sources: list | None = None,
                 gpu_hourly_cost: float = DEFAULT_GPU_HOURLY_COST) -> Path:
    """Validate run, write out_dir/report.md and its PNGs; returns the markdown's path."""
    validate_run(run, sources[0] if sources else "<run>")
    check_hourly_cost(gpu_hourly_cost)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in PLOTS:  # a plot this run cannot draw must not survive from an earlier report
        (out_dir / name).unlink(missing_ok=True)
    md = render(run, out_dir, sources, gpu_hourly_cost)
    path = out_dir / "report.md"
    path.write_text(md)
    return path


def report(paths: list[str | Path], out_dir: str | Path | None = None,
           gpu_hourly_cost: float = DEFAULT_GPU_HOURLY_COST) -> Path:
    """`python -m pagedbench report` as a function: load, merge, write; default out is reports/<slug>."""
    if not paths:
        raise PagedBenchError("no run JSON given")
    check_hourly_cost(gpu_hourly_cost)
    runs = [load_run(p) for p in paths]
    run = merge_runs(runs, list(paths)) if len(runs) > 1 else runs[0]
    out = Path(out_dir) if out_dir is not None else Path("reports") / run["slug"]
    return write_report(run, out, [str(p) for p in paths], gpu_hourly_cost)
