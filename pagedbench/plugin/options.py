"""The suite's command-line options, and the checks that refuse a bad value before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from pagedbench.cli.numbers import non_negative_int, positive_float
from pagedbench.engines import overrides
from pagedbench.errors import PagedBenchError
from pagedbench.gate import tolerance as tol
from pagedbench.workloads.serving_mixes import parse_rates

MARKERS = (
    ("blocks", "vLLM block pool and KV arithmetic"),
    ("throughput", "end-to-end tok/s"),
    ("kernels", "decode attention kernels"),
    ("serving", "vllm serve under vllm bench serve load"),
    ("matrix", "per-device parameter grid"),
    ("settings", "fp8 KV cache, compile modes, prefix caching, long context, start-up"),
    ("long", "long-context and start-up cases: -m 'not long' keeps a GPU run short"),
    ("gpu_only", "runs on GPUs only"),
    ("slow", "a minute or more on a 2-core CPU machine (CPU start-up, vLLM's own throughput benchmark, the bisect "
             "demonstration): left out unless --run-slow"),
    ("tensor_parallel(n)", "runs on n GPUs of one host; ids carry e.g. h200x2"),
)


def add_options(parser) -> None:
    g = parser.getgroup("pagedbench")
    g.addoption("--model", default=None, metavar="PATH",
                help="local HF checkpoint folder (real weights + tokenizer); default: the shipped "
                     "Llama-3.1-8B config (tiny Llama on CPU) with random weights")
    g.addoption("--dataset", default=None, metavar="PATH", help="ShareGPT-format JSON for the variable-length workload")
    g.addoption("--baselines-dir", default=None, metavar="DIR", help="default: <rootdir>/baselines")
    g.addoption("--update-baselines", action="store_true", help="merge this run's metrics into baselines/<gpu>.json")
    g.addoption("--require-baseline", action="store_true", help="fail tests that have no baseline for this GPU")
    g.addoption("--strict-versions", action="store_true", help="fail when software versions differ from the baseline's")
    g.addoption("--tolerance-k", type=positive_float, default=tol.K,
                help=f"tolerance = max(metric floor, K x spread within a run, {tol.K_RUN} x run-to-run spread) "
                     "(default %(default)s)")
    g.addoption("--confirm-runs", type=non_negative_int, default=tol.CONFIRM_RUNS, metavar="N",
                help="re-measure a suspected regression up to N times; it fails only when most measurements "
                     "regress (default %(default)s; 0 fails on the first)")
    g.addoption("--compare-other-settings", action="store_true",
                help="compare figures even where the baseline's were measured with other settings asked for (the "
                     "row names them); what bisect does, where a commit that changed a setting is a suspect")
    g.addoption("--strict-stale", action="store_true",
                help="fail a test whose figure improved beyond twice its tolerance: the baseline no longer "
                     "describes the code, and a regression as large would compare ok")
    g.addoption("--strict-gpu", action="store_true",
                help="fail a test when another process used the GPU or its clocks were throttled around it")
    g.addoption("--trust-machine", action="store_true",
                help="do not sample the machine around timed tests (treat it as idle and ours alone)")
    g.addoption("--serving-rates", default=None, metavar="R,R,...",
                help="request rates (req/s, 'inf' = all at once) of the serving tier's variable mix "
                     "(default: 1,4,16,inf)")
    g.addoption("--serving-logs", default=None, metavar="DIR",
                help="where the serving tier keeps each server's log (default <rootdir>/runs/serving-logs)")
    g.addoption("--pagedbench-device", action="append", default=None, metavar="SLUG",
                help="collect the cases of this device (cpu, h100, h200x2, ...) instead of this machine's, to list "
                     "or dry-run them (they skip here); repeat for several")
    g.addoption("--all-devices", action="store_true",
                help="collect every known device's cases (other devices' skip with the reason)")
    g.addoption("--run-slow", action="store_true",
                help="also run the cases marked slow on a CPU machine (CI runs them as a step of their own)")
    g.addoption("--engine-override", action="append", default=None, metavar="KEY=VALUE",
                help="an engine or server setting every test's engine or `vllm serve` starts with (a field of "
                     "EngineSettings or ServerSettings, e.g. max_num_batched_tokens=2048); repeat for several. "
                     "How `pagedbench ab` compares two settings")
    g.addoption("--metrics-json", default=None, metavar="PATH",
                help="where to write this run's metrics (run JSON); default runs/<gpu>-last.json")


def check_options(config) -> None:
    """Parse-time checks and defaults; a bad value is one usage line before any engine or server starts."""
    for name, what in MARKERS:
        config.addinivalue_line("markers", f"{name}: {what}")
    o = config.option
    try:
        o.engine_override = overrides.parse(o.engine_override)
    except PagedBenchError as exc:
        raise pytest.UsageError(str(exc)) from exc
    if o.serving_rates is not None:
        try:
            o.serving_rates = parse_rates(o.serving_rates)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from exc
    # Defaults relative to the rootdir (the checkout pytest runs in), not to where the plugin is installed.
    if o.baselines_dir is None:
        o.baselines_dir = str(config.rootpath / "baselines")
    if o.serving_logs is None:
        o.serving_logs = str(config.rootpath / "runs" / "serving-logs")


def metrics_json(config, slug: str) -> Path:
    return Path(config.option.metrics_json or config.rootpath / "runs" / f"{slug}-last.json")
