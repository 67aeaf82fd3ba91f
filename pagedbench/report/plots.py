"""The report's PNG plots; each returns the file name it wrote, or None when the run has nothing to draw.

matplotlib is imported inside the functions that draw: reading the report package (the README,
the command line's other commands) never loads it.
"""

from __future__ import annotations

from pathlib import Path

from pagedbench.gate.run_file import is_number
from pagedbench.report.results import (
    GB,
    REFERENCE_MODEL,
    Result,
    block_gb,
    bytes_per_token,
    load_metric,
    paged_overhead_pct,
    saturation,
    waste_rows,
)
from pagedbench.report.tables import fmt, varying_label

# Every file a report may write besides report.md.
PLOTS = ("memory_waste.png", "concurrent_users.png", "prefix_sharing.png", "max_num_seqs.png",
         "decode_attention.png", "memory_timeline.png", "serving_latency.png", "serving_throughput_latency.png")


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


def plot_memory_waste(rs: list[Result], out_dir: Path) -> str | None:
    label, model = REFERENCE_MODEL
    bpt = bytes_per_token(model)
    groups = [(r, waste_rows(r, bpt)) for r in rs]
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
    ax.set_xticks(range(len(groups)), [f"block {r.param('block_size')}" for r, _ in groups])
    ax.set_ylabel(f"KV cache, GB ({label})")
    ax.set_title(f"KV memory for {groups[0][0].param('n_requests')} variable-length users: contiguous vs paged")
    ax.set_ylim(0, max(w[0][1] for _, w in groups) / GB * 1.12 or 1)
    _legend_below(fig, ax, ncols=4)
    return _save(fig, out_dir, "memory_waste.png")


def plot_concurrent_users(rs: list[Result], out_dir: Path) -> str | None:
    bars = (("contiguous_users", "contiguous (max_seq_len each)", "#c44e52"),
            ("predicted_users", "paged, predicted", "#dd8452"),
            ("peak_running", "paged, measured (vLLM)", "#4c72b0"))
    rs = [r for r in rs if any(r.metric(k) is not None for k, _, _ in bars)]
    if not rs:
        return None
    fig, ax = _figure()
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
    _legend_below(fig, ax, ncols=len(bars))
    return _save(fig, out_dir, "concurrent_users.png")


def plot_prefix_sharing(pairs, out_dir: Path) -> str | None:
    label, model = REFERENCE_MODEL
    bpt = bytes_per_token(model)
    if not pairs:
        return None
    fig, ax = _figure()
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
    _legend_below(fig, ax, ncols=2)
    return _save(fig, out_dir, "prefix_sharing.png")


def plot_max_num_seqs(rs: list[Result], out_dir: Path) -> str | None:
    pts = [(r.param("max_num_seqs"), r.metric("output_tok_per_s")) for r in rs]
    pts = [(x, y) for x, y in pts if is_number(x) and x > 0 and y is not None]
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
    if is_number(sat) and sat in xs and sat < max(xs):
        ax.axvline(sat, color="grey", linestyle=":", linewidth=1)
        ax.annotate("saturation", (sat, 0), fontsize=8, color="grey", rotation=90, xytext=(3, 6),
                    textcoords="offset points", va="bottom")
    models = {str(r.param("model")) for r in rs if r.param("model")}
    ax.set_title("vLLM throughput vs max-num-seqs" + (f" ({models.pop()})" if len(models) == 1 else ""))
    return _save(fig, out_dir, "max_num_seqs.png")


def plot_decode(paged: list[Result], contiguous: list[Result], chosen: dict, out_dir: Path) -> str | None:
    """Latency (log-log), paged overhead and KV bandwidth vs context; contiguous kernels dashed."""
    def usable(rs):
        return [r for r in rs if is_number(r.param("context")) and r.param("context") > 0]

    paged, contiguous = usable(paged), usable(contiguous)
    if not any(r.metric("latency_us") is not None for r in paged + contiguous):
        return None
    from matplotlib import colormaps

    fig, (lat, over, bw) = _figure(14, 4.8, ncols=3)
    impls = sorted({str(r.param("impl")) for r in paged}) + sorted({str(r.param("impl")) for r in contiguous})
    colors = dict(zip(impls, colormaps["tab10"].colors))
    for rs, style in ((paged, "-"), (contiguous, "--")):
        for impl in sorted({str(r.param("impl")) for r in rs}):
            mine = [r for r in rs if str(r.param("impl")) == impl]
            label = f"{impl} ({'paged' if style == '-' else 'contiguous'})"
            for ax, value in ((lat, lambda r: r.metric("latency_us")), (bw, lambda r: r.metric("kv_gbps")),
                              (over, paged_overhead_pct if style == "-" else lambda r: None)):
                pts = [(r.param("context"), value(r)) for r in mine if value(r) is not None]
                if pts:
                    ax.plot(*zip(*pts), style, marker="o", markersize=4, color=colors[impl], label=label)
    contexts = sorted({r.param("context") for r in paged + contiguous})
    for ax in (lat, over, bw):
        ax.set_xscale("log", base=2)
        ax.set_xticks(contexts, [f"{c:,}" for c in contexts], fontsize=8)
        ax.minorticks_off()
        ax.grid(True, axis="x", alpha=0.3)
        ax.set_xlabel("context length, tokens (log scale)")
    lats = [r.metric("latency_us") for r in paged + contiguous if r.metric("latency_us") is not None]
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
    copy = {r.param("copy_gbps") for r in paged + contiguous if is_number(r.param("copy_gbps"))}
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



def plot_serving_latency(r: Result, keys: list[str], labels: dict, slo_ms: dict, out_dir: Path) -> str | None:
    """TTFT and TPOT, p50 and p99, against the request rate the server achieved; the SLO's p99 limits drawn.

    The achieved rate, not the offered one, is the x axis: the unbounded load has no offered rate to
    place, and a server that falls behind completes fewer requests per second than it was offered."""
    panels = (("ttft", "time to first token"), ("tpot", "time per output token"))
    fig, axes = _figure(12, 4.5, ncols=2)
    drawn = False
    for ax, (what, name) in zip(axes, panels):
        positive = True
        for pct, style in (("p50", "-"), ("p99", "--")):
            pts = [(load_metric(r, k, "req_per_s"), load_metric(r, k, f"{what}_{pct}_ms"), k) for k in keys]
            pts = [p for p in pts if p[0] is not None and p[1] is not None]
            if not pts:
                continue
            drawn = True
            positive = positive and all(y > 0 for _, y, _ in pts)
            xs, ys, ks = zip(*pts)
            ax.plot(xs, ys, style, marker="o", color="#4c72b0" if pct == "p50" else "#dd8452", label=pct)
            if pct == "p99":  # which offered rate each point was; the p99 line is the one the SLO judges
                for x, y, k in pts:
                    ax.annotate(labels.get(k, k), (x, y), fontsize=7, xytext=(0, 6), textcoords="offset points",
                                ha="center")
        limit = slo_ms.get(what)
        if limit is not None:
            ax.axhline(limit, color="#c44e52", linestyle=":", linewidth=1.2, label=f"SLO: p99 ≤ {limit:,.0f} ms")
        # p50 at low load and p99 at saturation differ 10-100x; a log axis cannot show a zero, though
        ax.set_yscale("log" if positive else "linear")
        if positive:  # 20, 50, 100, 200, ... ms: a reader reads values off the axis, not powers of ten
            from matplotlib.ticker import LogLocator, NullLocator

            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
            ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(_thousands())
        ax.grid(True, axis="x", alpha=0.3)
        ax.set_xlabel("achieved requests / s")
        ax.set_ylabel(f"{what.upper()}, ms" + (" (log scale)" if positive else ""))
        ax.set_title(name.capitalize())
        ax.legend(fontsize=8, loc="upper left")
    if not drawn:
        return None
    fig.suptitle("Serving latency vs request rate (variable prompts and outputs; labels: offered rate)", fontsize=10)
    return _save(fig, out_dir, "serving_latency.png")


def plot_serving_throughput(r: Result, keys: list[str], labels: dict, out_dir: Path) -> str | None:
    """Output tok/s against TPOT p50 over the concurrency sweep: what more requests in flight buy, and cost."""
    pts = [(load_metric(r, k, "tpot_p50_ms"), load_metric(r, k, "output_tok_per_s"), k) for k in keys]
    pts = [p for p in pts if p[0] is not None and p[1] is not None]
    if not pts:
        return None
    fig, ax = _figure()
    xs, ys, ks = zip(*pts)
    ax.plot(xs, ys, marker="o", color="#4c72b0")
    for x, y, k in pts:
        ax.annotate(labels.get(k, k), (x, y), fontsize=8, xytext=(6, -3), textcoords="offset points")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_xlabel("TPOT p50, ms")
    ax.set_ylabel("output tokens / s")
    ax.yaxis.set_major_formatter(_thousands())
    ax.set_ylim(0, max(max(ys) * 1.15, 1))
    ax.set_xlim(0, max(max(xs) * 1.15, 1e-3))
    ax.set_title("Throughput vs latency over the concurrency sweep (labels: most requests in flight)")
    return _save(fig, out_dir, "serving_throughput_latency.png")
