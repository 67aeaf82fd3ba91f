"""The settings the suite gives vLLM instead of its defaults, each with vLLM's default and why: the
report's settings table, for the offline engine and for `vllm serve` alike."""

from __future__ import annotations

from pagedbench.engines.engine_settings import EngineSettings
from pagedbench.engines.environment import IN_PROCESS


def common_changes(max_model_len: int, load_format: str, block_size: int | None, kv_cache_bytes: int | None,
                   enforce_eager: bool) -> list[dict]:
    """The settings the offline engine and `vllm serve` both take from the suite instead of vLLM's defaults:
    name, value, vLLM's default, why."""
    out = [dict(name="max_model_len", value=max_model_len, vllm_default="the model's (131072 for Llama-3.1)",
                why="every request of the workloads fits; a shorter limit only changes the start-up profile")]
    if load_format == "dummy":
        out.append(dict(name="load_format", value="dummy", vllm_default="auto",
                        why="random weights: nothing to download, the same matrices are multiplied"))
    if block_size is not None:
        out.append(dict(name="block_size", value=block_size, vllm_default="16 (CUDA)",
                        why="CPU attention takes multiples of 32 only"))
    if kv_cache_bytes is not None:
        out.append(dict(name="kv_cache_memory_bytes", value=kv_cache_bytes, vllm_default=None,
                        why="on CPU vLLM sizes the pool from host memory, which other processes share"))
    if enforce_eager:
        out.append(dict(name="enforce_eager", value=True, vllm_default=False,
                        why="the CPU tier (torch.compile adds about 20 s to a 2-layer start) and the eager side "
                            "of test_compile_modes"))
    return out


def changed_settings(settings: EngineSettings) -> list[dict]:
    """Every setting the throughput engine gives vLLM other than its default."""
    return [dict(name=IN_PROCESS, value=0, vllm_default=1,
                 why="the engine core in this process, so the sweep can set the scheduler's cap on a live engine"),
            dict(name="seed", value=0, vllm_default=None, why="the same sampling in every run"),
            dict(name="disable_log_stats", value=False, vllm_default=True, why="vLLM's counters (preemptions, hits)"),
            *common_changes(settings.max_model_len, settings.load_format, settings.block_size,
                            settings.kv_cache_bytes, settings.enforce_eager),
            *([dict(name="kv_cache_dtype", value=settings.kv_cache_dtype, vllm_default="auto",
                    why="the KV cache dtype under test")] if settings.kv_cache_dtype != "auto" else []),
            *([dict(name="pass_config.fuse_allreduce_rms", value=False, vllm_default=True,
                    why="at TP 2 on 2xH200 (vLLM 0.26.0, NVLink multicast off) the compiled warm-up with the "
                        "fused all-reduce + RMSNorm hit an illegal memory access")]
              if settings.fuse_allreduce_rms is False else [])]
