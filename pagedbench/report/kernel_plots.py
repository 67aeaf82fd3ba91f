"""The kernel tier's plot: decode attention latency, paged against contiguous.

Each returns the file name it wrote, or None when the run has nothing to draw.
"""

from __future__ import annotations

from pathlib import Path

from pagedbench.gate.run_file import is_number
from pagedbench.report.plots import figure, legend_below, save, thousands
from pagedbench.report.results import Result, paged_overhead_pct


def plot_decode(paged: list[Result], contiguous: list[Result], chosen: dict, out_dir: Path) -> str | None:
    """Latency (log-log), paged overhead and KV bandwidth vs context; contiguous kernels dashed."""
    def usable(rs):
        return [r for r in rs if is_number(r.param("context")) and r.param("context") > 0]

    paged, contiguous = usable(paged), usable(contiguous)
    if not any(r.metric("latency_us") is not None for r in paged + contiguous):
        return None
    from matplotlib import colormaps

    fig, (lat, over, bw) = figure(14, 4.8, ncols=3)
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
    bw.yaxis.set_major_formatter(thousands())
    bw.set_title("Achieved KV bandwidth")
    legend_below(fig, lat if lat.get_legend_handles_labels()[0] else bw, ncols=len(impls))
    fig.suptitle("Llama-3.1-8B attention, one layer; shown: "
                 + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in chosen.items()), fontsize=9)
    return save(fig, out_dir, "decode_attention.png")
