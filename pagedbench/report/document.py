"""The whole report: its parts in order, written to report.md beside the plots."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pagedbench.errors import PagedBenchError
from pagedbench.gate.run_file import load_run, merge_runs, setup_slug, validate_run
from pagedbench.report.capacity import DEFAULT_GPU_HOURLY_COST, check_hourly_cost, section_capacity
from pagedbench.report.kernel_sections import section_decode_attention, section_prefill
from pagedbench.report.memory_sections import (
    section_block_counts,
    section_concurrent_users,
    section_fragmentation,
    section_memory_waste,
    section_prefix_sharing,
)
from pagedbench.report.parallel_sections import section_tensor_parallel
from pagedbench.report.plots import PLOTS
from pagedbench.report.serving_sections import section_serving, section_settings
from pagedbench.report.settings_sections import section_settings_tier
from pagedbench.report.summary import comparisons_summary, figures_table, header
from pagedbench.report.throughput_sections import (
    section_hf_generate,
    section_max_num_seqs,
    section_memory_timeline,
    section_vllm_throughput,
)

# A section takes (run, out_dir) and returns (title, markdown body); plots it makes land in out_dir.
# Their numbers come from this order: a section added or moved renumbers the rest.
Section = Callable[[dict, Path], tuple[str, str]]
SECTIONS: tuple[Section, ...] = (
    section_memory_waste, section_concurrent_users, section_prefix_sharing, section_fragmentation,
    section_block_counts, section_hf_generate, section_vllm_throughput, section_max_num_seqs,
    section_decode_attention, section_prefill, section_memory_timeline, section_serving, section_settings_tier,
    section_settings, section_tensor_parallel,
)


def render(run: dict, out_dir: Path, sources: list | None = None,
           gpu_hourly_cost: float = DEFAULT_GPU_HOURLY_COST) -> str:
    """The whole markdown document; writes the plots into out_dir on the way."""
    parts = [header(run, sources or []), comparisons_summary(run), "## Headline figures\n\n" + figures_table(run),
             section_capacity(run, out_dir, gpu_hourly_cost)]
    for number, section in enumerate(SECTIONS, 1):
        title, body = section(run, out_dir)
        parts.append(f"## {number}. {title}\n\n{body}")
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
    out = Path(out_dir) if out_dir is not None else Path("reports") / setup_slug(run)
    return write_report(run, out, [str(p) for p in paths], gpu_hourly_cost)
