"""The serving tier's plots: latency percentiles against the request rate, throughput against latency.

Each returns the file name it wrote, or None when the run has nothing to draw.
"""

from __future__ import annotations

from pathlib import Path

from pagedbench.report.plots import figure, save, thousands
from pagedbench.report.results import Result, load_metric


def plot_serving_latency(r: Result, keys: list[str], labels: dict, slo_ms: dict, out_dir: Path) -> str | None:
    """TTFT and TPOT, p50 and p99, against the request rate the server achieved; the SLO's p99 limits drawn.

    The achieved rate, not the offered one, is the x axis: the unbounded load has no offered rate to
    place, and a server that falls behind completes fewer requests per second than it was offered."""
    panels = (("ttft", "time to first token"), ("tpot", "time per output token"))
    fig, axes = figure(12, 4.5, ncols=2)
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
        ax.yaxis.set_major_formatter(thousands())
        ax.grid(True, axis="x", alpha=0.3)
        ax.set_xlabel("achieved requests / s")
        ax.set_ylabel(f"{what.upper()}, ms" + (" (log scale)" if positive else ""))
        ax.set_title(name.capitalize())
        ax.legend(fontsize=8, loc="upper left")
    if not drawn:
        return None
    fig.suptitle("Serving latency vs request rate (variable prompts and outputs; labels: offered rate)", fontsize=10)
    return save(fig, out_dir, "serving_latency.png")


def plot_serving_throughput(r: Result, keys: list[str], labels: dict, out_dir: Path) -> str | None:
    """Output tok/s against TPOT p50 over the concurrency sweep: what more requests in flight buy, and cost."""
    pts = [(load_metric(r, k, "tpot_p50_ms"), load_metric(r, k, "output_tok_per_s"), k) for k in keys]
    pts = [p for p in pts if p[0] is not None and p[1] is not None]
    if not pts:
        return None
    fig, ax = figure()
    xs, ys, ks = zip(*pts)
    ax.plot(xs, ys, marker="o", color="#4c72b0")
    for x, y, k in pts:
        ax.annotate(labels.get(k, k), (x, y), fontsize=8, xytext=(6, -3), textcoords="offset points")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_xlabel("TPOT p50, ms")
    ax.set_ylabel("output tokens / s")
    ax.yaxis.set_major_formatter(thousands())
    ax.set_ylim(0, max(max(ys) * 1.15, 1))
    ax.set_xlim(0, max(max(xs) * 1.15, 1e-3))
    ax.set_title("Throughput vs latency over the concurrency sweep (labels: most requests in flight)")
    return save(fig, out_dir, "serving_throughput_latency.png")
