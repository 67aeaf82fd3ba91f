"""The throughput tier's plots: tok/s against the batch cap, device memory over a run.

Each returns the file name it wrote, or None when the run has nothing to draw.
"""

from __future__ import annotations

from pathlib import Path

from pagedbench.gate.run_file import is_number
from pagedbench.report.plots import figure, legend_below, save, thousands
from pagedbench.report.results import Result, saturation


def plot_max_num_seqs(rs: list[Result], out_dir: Path) -> str | None:
    pts = [(r.param("max_num_seqs"), r.metric("output_tok_per_s")) for r in rs]
    pts = [(x, y) for x, y in pts if is_number(x) and x > 0 and y is not None]
    if not pts:
        return None
    fig, ax = figure()
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
    ax.yaxis.set_major_formatter(thousands())
    ax.set_ylim(0, max(max(ys) * 1.15, 1))
    sat = saturation(rs)
    if is_number(sat) and sat in xs and sat < max(xs):
        ax.axvline(sat, color="grey", linestyle=":", linewidth=1)
        ax.annotate("saturation", (sat, 0), fontsize=8, color="grey", rotation=90, xytext=(3, 6),
                    textcoords="offset points", va="bottom")
    models = {str(r.param("model")) for r in rs if r.param("model")}
    ax.set_title("vLLM throughput vs max-num-seqs" + (f" ({models.pop()})" if len(models) == 1 else ""))
    return save(fig, out_dir, "max_num_seqs.png")


MAX_TIMELINES = 8  # more lines than this are unreadable on one plot


def plot_memory_timeline(run: dict, out_dir: Path) -> str | None:
    lines = [(nodeid.split("::")[-1], e["series"]["memory_gib"]) for nodeid, e in sorted(run["tests"].items())
             if e.get("series", {}).get("memory_gib")]
    if not lines:
        return None
    fig, ax = figure()
    for label, points in lines[:MAX_TIMELINES]:
        ax.plot(*zip(*points), label=label, linewidth=1.2)
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_xlabel("time since test start, s")
    ax.set_ylabel("GPU memory, GiB")
    ax.set_ylim(bottom=0)
    title = "Memory over time" + (f" (first {MAX_TIMELINES} of {len(lines)} tests)" if len(lines) > MAX_TIMELINES else "")
    ax.set_title(title)
    legend_below(fig, ax, ncols=2)  # inside, it hides the lines near the top (vLLM's pre-allocated pool)
    return save(fig, out_dir, "memory_timeline.png")
