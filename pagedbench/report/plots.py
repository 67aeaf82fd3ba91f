"""The report's PNG plots: the files a report may write, and the figure helpers every tier's plots share
(memory_plots, throughput_plots, kernel_plots, serving_plots).

matplotlib is imported inside the functions that draw: reading the report package (the README,
the command line's other commands) never loads it.
"""

from __future__ import annotations

from pathlib import Path

# Every file a report may write besides report.md.
PLOTS = ("memory_waste.png", "concurrent_users.png", "prefix_sharing.png", "max_num_seqs.png",
         "decode_attention.png", "memory_timeline.png", "serving_latency.png", "serving_throughput_latency.png")


def figure(width: float = 8.0, height: float = 4.5, ncols: int = 1):
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


def legend_below(fig, ax, ncols: int) -> None:
    """Legend under the axes: inside, it hides the bar labels of whichever group it lands on."""
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=ncols, fontsize=8, frameon=False)


def thousands():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:,.0f}")


def save(fig, out_dir: Path, name: str) -> str:
    fig.savefig(out_dir / name)
    return name
