"""What each tier runs: the CPU tier is the GPU tier scaled to a 2-core machine.

The test functions are the same on both; only these sizes differ.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    model: str                   # shipped model name, unless --model is given
    kv_budget_tokens: int        # fixed KV budget of the block-pool engines
    max_model_len: int
    max_num_batched_tokens: int  # one step can prefill the whole seed mix
    hf_new_tokens: int
    hf_batches: tuple[int, ...]
    static_cache_len: int        # what the HF static cache pre-allocates per sequence
    throughput_requests: int     # variable-length workload
    throughput_io: tuple[int, int]
    sweep_output_tokens: int
    sweep_points: tuple[int, ...]
    concurrency_requests: int
    enforce_eager_throughput: bool
    serving_block_size: int | None  # None: vLLM's default on the device (CPU attention needs multiples of 32)
    serving_kv_tokens: int | None # None: vLLM sizes the pool from gpu_memory_utilization
    timing_rounds: int
    long_contexts: tuple[int, ...]   # prompt lengths of the long-context cases
    long_decode_tokens: int          # decode steps timed at each long context
    prefix_users: int                # requests of the shared-system-prompt throughput case
    prefix_output_tokens: int


# Budget = 32 sequences pre-allocated at max_model_len: the "N" of the concurrency table.
CONTIGUOUS_USERS = 32

CPU = Sizes(
    model="tiny-llama", kv_budget_tokens=CONTIGUOUS_USERS * 2048, max_model_len=2048,
    max_num_batched_tokens=65536, hf_new_tokens=16, hf_batches=(1, 16), static_cache_len=512,
    throughput_requests=24, throughput_io=(16, 64), sweep_output_tokens=8, sweep_points=(1, 4, 16, 64),
    concurrency_requests=160,
    enforce_eager_throughput=True, serving_block_size=32, serving_kv_tokens=CONTIGUOUS_USERS * 2048, timing_rounds=2,
    # tiny-llama's config allows 4096 positions: the CPU's long contexts are scaled to it
    long_contexts=(1024, 4000), long_decode_tokens=16, prefix_users=32, prefix_output_tokens=8,
)
GPU = Sizes(
    model="llama-3.1-8b", kv_budget_tokens=CONTIGUOUS_USERS * 2048, max_model_len=2048,
    max_num_batched_tokens=65536, hf_new_tokens=128, hf_batches=(1, 16, 64), static_cache_len=2048,
    throughput_requests=320, throughput_io=(32, 512), sweep_output_tokens=128, sweep_points=(1, 4, 16, 64, 256, 512, 1024),
    concurrency_requests=256,
    enforce_eager_throughput=False, serving_block_size=None, serving_kv_tokens=None, timing_rounds=3,
    long_contexts=(8192, 32768), long_decode_tokens=64, prefix_users=256, prefix_output_tokens=64,
)


def sizes_for(kind: str) -> Sizes:
    return GPU if kind == "gpu" else CPU


def variable_workload(sizes: Sizes, seed: int = 0):
    """The variable-length throughput workload of a tier."""
    from pagedbench.workloads.requests import uniform_io

    lo, hi = sizes.throughput_io
    return uniform_io(sizes.throughput_requests, seed=seed, vocab_size=4096, lo=lo, hi=hi)
