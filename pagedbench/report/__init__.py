"""Markdown report and PNG plots from a run's --metrics-json file.

    python -m pagedbench report RUN.json [RUN.json ...] [--out DIR] [--gpu-hourly-cost 2.50]

One section per kind of test, each found by the test function's name and read
from the params the suite recorded (never from the pytest id). Block and token
counts are converted to bytes here, for LLaMA-7B fp16 and Llama-3.1-8B bf16,
because which model the blocks hold is a matter of arithmetic, not of
measurement: a block of 16 tokens is a block of 16 tokens whatever the model.

This package's modules, lowest first: results (what a section reads), tables
(cells and markdown), plots (the file names and figure helpers) and the plots by tier (memory_plots,
throughput_plots, kernel_plots, serving_plots), the sections by tier (memory_sections,
serving_sections, settings_sections, throughput_sections, kernel_sections), capacity, summary
(header, comparisons, headline figures) and document (the whole report). The names below are the
ones the rest of the suite uses; the run JSON itself is pagedbench.gate.run_file's.
"""

from pagedbench.gate.run_file import load_run, merge_runs, validate_run
from pagedbench.report.capacity import CAPACITY_TITLE, DEFAULT_GPU_HOURLY_COST, capacity_body, check_hourly_cost
from pagedbench.report.document import SECTIONS, render, report, write_report
from pagedbench.report.memory_sections import (
    CONCURRENT_TITLE,
    FRAGMENTATION_TITLE,
    PREFIX_TITLE,
    concurrent_users_body,
    fragmentation_body,
    memory_waste_body,
    memory_waste_title,
    prefix_sharing_body,
)
from pagedbench.report.plots import PLOTS
from pagedbench.report.results import (
    BLOCK_COUNTS,
    BYTE_MODELS,
    CONCURRENT_USERS,
    CONTIGUOUS_DECODE,
    HF_GENERATE,
    MAX_NUM_SEQS_SWEEP,
    MEMORY_WASTE,
    PAGED_DECODE,
    PAGED_PREFILL,
    PREFIX_SHARING,
    REFERENCE_MODEL,
    SERVING_CONCURRENCY,
    SERVING_PREFIX,
    SERVING_RATES,
    TEST_FUNCTIONS,
    VLLM_BENCH_REFERENCE,
    VLLM_THROUGHPUT,
    Result,
    prefix_pairs,
    results,
    sorted_by,
)
from pagedbench.report.serving_sections import SERVING_TITLE, SETTINGS_TITLE, SLO_MS
from pagedbench.report.settings_sections import SETTINGS_TIER_TITLE
from pagedbench.report.summary import FIGURES_HEADERS, FIGURES_TEXT_COLUMNS, figures_row, figures_table
from pagedbench.report.tables import DASH, NOT_IN_RUN, fmt, md_table

__all__ = [
    "BLOCK_COUNTS", "BYTE_MODELS", "CAPACITY_TITLE", "CONCURRENT_TITLE", "CONCURRENT_USERS", "CONTIGUOUS_DECODE",
    "DASH", "DEFAULT_GPU_HOURLY_COST", "FIGURES_HEADERS", "FIGURES_TEXT_COLUMNS", "FRAGMENTATION_TITLE",
    "HF_GENERATE", "MAX_NUM_SEQS_SWEEP", "MEMORY_WASTE", "NOT_IN_RUN", "PAGED_DECODE", "PAGED_PREFILL", "PLOTS",
    "PREFIX_SHARING", "PREFIX_TITLE", "REFERENCE_MODEL", "Result", "SECTIONS", "SERVING_CONCURRENCY", "SERVING_PREFIX",
    "SERVING_RATES", "SERVING_TITLE", "SETTINGS_TIER_TITLE", "SETTINGS_TITLE", "SLO_MS", "TEST_FUNCTIONS", "VLLM_BENCH_REFERENCE",
    "VLLM_THROUGHPUT",
    "capacity_body", "check_hourly_cost", "concurrent_users_body", "figures_row", "figures_table", "fmt",
    "fragmentation_body", "load_run", "md_table", "memory_waste_body", "memory_waste_title", "merge_runs",
    "prefix_pairs", "prefix_sharing_body", "render", "report", "results", "sorted_by", "validate_run", "write_report",
]
