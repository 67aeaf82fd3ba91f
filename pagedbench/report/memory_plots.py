"""The memory tier's plots: KV waste per model, concurrent users a pool holds, prefix sharing.

Each returns the file name it wrote, or None when the run has nothing to draw.
"""

from __future__ import annotations

from pathlib import Path

from pagedbench.gate.run_file import is_number
from pagedbench.report.plots import figure, legend_below, save
from pagedbench.report.results import GB, REFERENCE_MODEL, Result, block_gb, bytes_per_token, waste_rows
from pagedbench.report.tables import fmt, varying_label


def plot_memory_waste(rs: list[Result], out_dir: Path) -> str | None:
    label, model = REFERENCE_MODEL
    bpt = bytes_per_token(model)
    groups = [(r, waste_rows(r, bpt)) for r in rs]
    groups = [(r, w) for r, w in groups if w]
    if not groups:
        return None
    fig, ax = figure()
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
    ax.set_xticks(range(len(groups)), [f"block {r.param('block_size')}" for r, _ in groups])
    ax.set_ylabel(f"KV cache, GB ({label})")
    ax.set_title(f"KV memory for {groups[0][0].param('n_requests')} variable-length users: contiguous vs paged")
    ax.set_ylim(0, max(w[0][1] for _, w in groups) / GB * 1.12 or 1)
    legend_below(fig, ax, ncols=4)
    return save(fig, out_dir, "memory_waste.png")


def plot_concurrent_users(rs: list[Result], out_dir: Path) -> str | None:
    bars = (("contiguous_users", "contiguous (max_seq_len each)", "#c44e52"),
            ("predicted_users", "paged, predicted", "#dd8452"),
            ("peak_running", "paged, measured (vLLM)", "#4c72b0"))
    rs = [r for r in rs if any(r.metric(k) is not None for k, _, _ in bars)]
    if not rs:
        return None
    fig, ax = figure()
    width = 0.8 / len(bars)
    for j, (key, name, color) in enumerate(bars):
        xs = [i + (j - 1) * width for i in range(len(rs))]
        ys = [r.metric(key) or 0 for r in rs]
        container = ax.bar(xs, ys, width, color=color, label=name)
        ax.bar_label(container, labels=[fmt(r.metric(key)) for r in rs], fontsize=8, padding=2)
    keys = ("block_size", "budget_tokens", "max_seq_len", "avg_len")
    short = {"block_size": "block", "budget_tokens": "budget", "max_seq_len": "max len", "avg_len": "avg len"}
    ax.set_xticks(range(len(rs)), [varying_label(r, rs, keys, short) for r in rs])
    budgets = {r.param("budget_tokens") for r in rs}
    budget = "a KV budget"
    if len(budgets) == 1 and is_number(next(iter(budgets))):
        tokens = budgets.pop()
        label, model = REFERENCE_MODEL
        budget = f"a {tokens:,}-token KV budget ({tokens * bytes_per_token(model) / GB:.2f} GB for {label})"
    ax.set_title(f"Concurrent users under {budget}")
    ax.set_ylabel("requests held at once")
    ax.margins(y=0.1)
    legend_below(fig, ax, ncols=len(bars))
    return save(fig, out_dir, "concurrent_users.png")


def plot_prefix_sharing(pairs, out_dir: Path) -> str | None:
    label, model = REFERENCE_MODEL
    bpt = bytes_per_token(model)
    if not pairs:
        return None
    fig, ax = figure()
    width = 0.38
    all_keys = [k for k, _, _ in pairs]
    for i, ((bs, users, shared, unique), off, on) in enumerate(pairs):
        gb = {s: block_gb(r.metric("peak_blocks"), bs, bpt) if r else None for s, r in (("off", off), ("on", on))}
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
    legend_below(fig, ax, ncols=2)
    return save(fig, out_dir, "prefix_sharing.png")
