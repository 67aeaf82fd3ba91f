"""One test's results, found by the test function's name, and the figures a table and its plot share.

Results are read from the params the suite recorded, never from the pytest id. Block and
token counts become bytes here, for LLaMA-7B fp16 and Llama-3.1-8B bf16, because which model
the blocks hold is a matter of arithmetic, not of measurement: a block of 16 tokens is a
block of 16 tokens whatever the model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

from pagedbench.gate.run_file import is_number
from pagedbench.workloads.model import load_shape
from pagedbench.workloads.requests import repeated_name

GB = 1e9            # tables in GB follow the vLLM paper; GiB is said where it is GiB

# (label, shipped config): the models whose bytes the block counts are converted to.
BYTE_MODELS = (("LLaMA-7B fp16", "llama-7b"), ("Llama-3.1-8B bf16", "llama-3.1-8b"))
REFERENCE_MODEL = BYTE_MODELS[0]  # single-model tables and plots use LLaMA-7B, as the tutorial does

# The test functions the report and the README read, each with what reads it. Results are found by
# function name, so a renamed test would silently empty its section: every name is written here
# once, and tests/unit/report/test_report.py fails when one is no longer a test function in tests/benchmarks/.
MEMORY_WASTE = "test_memory_waste"              # Memory waste, Internal fragmentation; headline waste; README
CONCURRENT_USERS = "test_concurrent_users"      # Concurrent users; the capacity table's max batch; README
PREFIX_SHARING = "test_prefix_sharing"          # Prefix sharing; README
BLOCK_COUNTS = "test_block_counts"              # Block pool size; headline blocks per block size
HF_GENERATE = "test_hf_generate"                # Hugging Face generate; capacity's standard requests/s; headline
VLLM_THROUGHPUT = "test_vllm_throughput"        # vLLM offline throughput; capacity's paged requests/s; headline
MAX_NUM_SEQS_SWEEP = "test_max_num_seqs_sweep"  # Throughput vs max-num-seqs
PAGED_DECODE = "test_paged_decode"              # Decode attention kernels; headline decode GB/s
PAGED_DECODE_FP8 = "test_paged_decode_fp8"      # Decode attention kernels: the fp8 cache
CONTIGUOUS_DECODE = "test_contiguous_decode"    # Decode attention kernels: the contiguous baseline
PAGED_PREFILL = "test_paged_prefill"            # Paged prefill
VLLM_BENCH_REFERENCE = "test_vllm_bench_reference"  # vLLM offline throughput: against vllm bench; Settings
SERVING_RATES = "test_serving_rates"            # Serving under load; Settings; headline TTFT p99, SLO capacity
SERVING_CONCURRENCY = "test_serving_concurrency"  # Serving under load: concurrency; Settings
SERVING_PREFIX = "test_serving_prefix_caching"  # Serving under load: prefix caching on/off
TP_SCALING = "test_tp_scaling"                  # Tensor parallel; README (h200x2 row)
TP_BLOCK_COUNTS = "test_tp_block_counts"        # Tensor parallel: blocks per GPU; README (h200x2 row)
LLAMA70B_TP2 = "test_llama70b_tp2"              # Tensor parallel: 70B
KV_DTYPE_BLOCKS = "test_kv_cache_dtype_blocks"  # Settings vLLM regresses in: fp8 KV cache, blocks per budget
KV_DTYPE_THROUGHPUT = "test_kv_cache_dtype_throughput"  # Settings vLLM regresses in: fp8 KV cache, throughput
COMPILE_MODES = "test_compile_modes"            # Settings vLLM regresses in: compiled vs eager
PREFIX_CACHING_THROUGHPUT = "test_prefix_caching_throughput"  # Settings vLLM regresses in: prefix caching
LONG_CONTEXT = "test_long_context"              # Settings vLLM regresses in: long context
ENGINE_STARTUP = "test_engine_startup"          # Settings vLLM regresses in: start-up
TEST_FUNCTIONS = (MEMORY_WASTE, CONCURRENT_USERS, PREFIX_SHARING, BLOCK_COUNTS, HF_GENERATE, VLLM_THROUGHPUT,
                  MAX_NUM_SEQS_SWEEP, PAGED_DECODE, PAGED_DECODE_FP8, CONTIGUOUS_DECODE, PAGED_PREFILL, VLLM_BENCH_REFERENCE,
                  SERVING_RATES, SERVING_CONCURRENCY, SERVING_PREFIX, TP_SCALING, TP_BLOCK_COUNTS, LLAMA70B_TP2,
                  KV_DTYPE_BLOCKS, KV_DTYPE_THROUGHPUT, COMPILE_MODES, PREFIX_CACHING_THROUGHPUT, LONG_CONTEXT,
                  ENGINE_STARTUP)


@dataclass(frozen=True)
class Result:
    nodeid: str
    outcome: str
    params: dict
    metrics: dict                 # name -> finite value; NaN/inf are treated as not measured
    units: dict
    series: dict = field(default_factory=dict)

    def metric(self, name: str) -> float | None:
        """The metric's value; None when the test did not record it or it was not finite."""
        return self.metrics.get(name)

    def param(self, name: str):
        """The param as the test recorded it, of whatever JSON type; None when absent."""
        return self.params.get(name)

    def positive_param(self, name: str) -> float | None:
        """A param that arithmetic needs: a positive number, else None (the cell shows '–')."""
        v = self.params.get(name)
        return v if is_number(v) and v > 0 else None


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


def speedups_vs_hf(run: dict) -> dict[str, tuple[float, bool]]:
    """vLLM throughput test id -> (its speed-up over HF generate() on the same requests, whether the test
    measured it in one session).

    The test records speedup_vs_hf when HF's dynamic-cache batch of those requests ran before it in its
    session. Run in separate sessions (chunks, `-k`), both figures are still in the run files: the ratio
    is taken here from the HF result of the same model, batch and new tokens (the newest of each once
    the files are merged)."""
    hf = {(r.param("model"), repeated_name(r.param("batch"), r.param("new_tokens"))): r.metric("tok_per_s")
          for r in results(run, HF_GENERATE) if r.param("cache") == "dynamic" and r.metric("tok_per_s")}
    out = {}
    for r in results(run, VLLM_THROUGHPUT):
        hf_tok_s, vllm_tok_s = hf.get((r.param("model"), r.param("workload"))), r.metric("output_tok_per_s")
        if r.metric("speedup_vs_hf") is not None:
            out[r.nodeid] = (r.metric("speedup_vs_hf"), True)
        elif hf_tok_s and vllm_tok_s is not None:
            out[r.nodeid] = (vllm_tok_s / hf_tok_s, False)
    return out


def param_order(v):
    """Sort key for param values of mixed types: numbers first, in numeric order."""
    return (0, v, "") if is_number(v) else (1, 0, str(v))


def sorted_by(rs: Iterable[Result], *keys: str) -> list[Result]:
    return sorted(rs, key=lambda r: tuple(param_order(r.param(k)) for k in keys))


@cache
def bytes_per_token(model: str) -> int:
    return load_shape(model).kv_bytes_per_token()


def block_gb(blocks, block_size, bpt) -> float | None:
    return blocks * block_size * bpt / GB if blocks is not None and is_number(block_size) else None


def waste_rows(r: Result, bpt: int) -> list[tuple[str, float, float]] | None:
    """(approach, allocated bytes, used bytes) for contiguous and paged, or None when incomplete."""
    n, max_len, bs = r.positive_param("n_requests"), r.positive_param("max_seq_len"), r.positive_param("block_size")
    held, peak = r.metric("tokens_held"), r.metric("peak_blocks")
    if None in (n, max_len, bs, held, peak) or peak == 0:
        return None
    used = held * bpt
    return [("contiguous (max_seq_len each)", n * max_len * bpt, used),
            (f"paged, block {bs}", peak * bs * bpt, used)]


PREFIX_KEYS = ("block_size", "n_users", "shared_len", "unique_len")


def prefix_pairs(rs: list[Result]) -> list[tuple[tuple, Result | None, Result | None]]:
    """(workload params, caching off, caching on) for each workload."""
    pairs: dict[tuple, list] = {}
    for r in rs:
        key = tuple(r.param(k) for k in PREFIX_KEYS)
        pairs.setdefault(key, [None, None])[1 if r.param("prefix_caching") else 0] = r
    return [(k, off, on) for k, (off, on) in sorted(pairs.items(), key=lambda kv: tuple(map(param_order, kv[0])))]


def saturation(rs: list[Result]):
    """The sweep's saturation point as the test recorded it after its largest point (it grows with the sweep)."""
    recorded = [r for r in rs if is_number(r.param("max_num_seqs")) and is_number(r.param("saturation_max_num_seqs"))]
    return max(recorded, key=lambda r: r.param("max_num_seqs")).param("saturation_max_num_seqs") if recorded else None


def paged_overhead_pct(r: Result) -> float | None:
    """Paged latency over the contiguous baseline's, − 1, in %; negative = paged was faster."""
    v = r.param("paged_overhead_pct")
    if is_number(v) and math.isfinite(v):
        return v
    ratio_ = r.metric("paged_to_contiguous")
    return None if ratio_ is None else 100 * (ratio_ - 1)


def load_keys(r: Result, listed: str, prefix: str = "") -> list[str]:
    """The serving loads of a result ('r1', 'c16', 'cache_on', ...) in the order the test ran them.

    Read from the list param the test recorded (`rates` holds keys, `concurrency` the limits, so
    prefix makes them keys); a run without it still shows every load that has a req/s, by offered rate."""
    listed_keys = r.param(listed)
    if isinstance(listed_keys, list) and listed_keys:
        return [f"{prefix}{k}" for k in listed_keys]
    keys = [name.rsplit(".", 1)[0] for name in r.metrics if name.endswith(".req_per_s")]
    return sorted(keys, key=lambda k: param_order(r.param(f"{k}.offered_rate")))


def load_metric(r: Result, key: str, name: str) -> float | None:
    """A serving load's figure: its metric `key.name`, else its param of that name (goodput, server counters)."""
    v = r.metric(f"{key}.{name}")
    if v is None:
        p = r.param(f"{key}.{name}")
        v = float(p) if is_number(p) and math.isfinite(p) else None
    return v
