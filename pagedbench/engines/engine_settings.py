"""What the offline engine is started with, and the two engines the tiers start from it.

Equal settings share one engine (engines/pool.py), so everything that makes two engines
different is a field here; `start()` builds the engine in this process (engines/vllm_offline.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from pagedbench.errors import PagedBenchError
from pagedbench.workloads.model import ModelShape, pool_blocks

if TYPE_CHECKING:
    from pagedbench.engines.vllm_offline import VLLMEngine


@dataclass(frozen=True)
class EngineSettings:
    """Everything that makes two engines different; equal settings share one engine."""

    model: str                      # folder with config.json (and weights when load_format is "auto")
    block_size: int | None          # None: vLLM's default for the device
    enable_prefix_caching: bool | None = False  # None: vLLM's default (on)
    kv_cache_bytes: int | None = None   # fixed KV budget; None: gpu_memory_utilization decides
    gpu_memory_utilization: float = 0.9
    max_model_len: int = 2048
    max_num_seqs: int | None = 256   # None: vLLM's default for the device (1024 on an 80 GB Hopper)
    max_num_batched_tokens: int | None = 65536  # None: vLLM's default for the device
    load_format: str = "dummy"
    enforce_eager: bool = True
    tensor_parallel_size: int = 1
    async_scheduling: bool | None = None  # None: vLLM's default for the device
    kv_cache_dtype: str = "auto"    # "auto": the model's dtype; "fp8", "fp8_e4m3", "fp8_e5m2"
    fuse_allreduce_rms: bool | None = None  # None: vLLM's default (on with compilation at TP > 1)

    def llm_kwargs(self) -> dict:
        kw = dict(
            model=self.model, load_format=self.load_format, max_model_len=self.max_model_len,
            enforce_eager=self.enforce_eager, tensor_parallel_size=self.tensor_parallel_size,
            disable_log_stats=False, seed=0,
        )
        for name in ("block_size", "enable_prefix_caching", "max_num_seqs"):
            if getattr(self, name) is not None:
                kw[name] = getattr(self, name)
        if self.tensor_parallel_size > 1:
            kw["distributed_executor_backend"] = "mp"
        if self.async_scheduling is not None:
            kw["async_scheduling"] = self.async_scheduling
        if self.kv_cache_dtype != "auto":
            kw["kv_cache_dtype"] = self.kv_cache_dtype
        if self.max_num_batched_tokens is not None:
            kw["max_num_batched_tokens"] = self.max_num_batched_tokens
        if self.fuse_allreduce_rms is not None:
            kw["compilation_config"] = {"pass_config": {"fuse_allreduce_rms": self.fuse_allreduce_rms}}
        if self.load_format == "dummy":
            kw["skip_tokenizer_init"] = True  # a shipped config folder has no tokenizer
        if self.kv_cache_bytes is not None:
            kw["kv_cache_memory_bytes"] = self.kv_cache_bytes
        else:
            kw["gpu_memory_utilization"] = self.gpu_memory_utilization
        return kw

    def start(self) -> VLLMEngine:
        from pagedbench.engines.vllm_offline import VLLMEngine  # the engine module imports vLLM's pieces

        return VLLMEngine(self)

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self).items() if k != "model")


def block_pool_settings(model_dir, shape: ModelShape, sizes, block_size: int, prefix_caching: bool = False,
                        load_format: str = "dummy", tp: int = 1, kv_cache_dtype: str = "auto") -> EngineSettings:
    """The fixed-budget engine every block-pool benchmark of a block size shares (budget per GPU)."""
    kv_bytes = sizes.kv_budget_tokens * shape.kv_bytes_per_token(tp)
    if pool_blocks(kv_bytes, block_size, shape.kv_bytes_per_token(tp)) * block_size < sizes.max_model_len:
        raise PagedBenchError(f"a KV budget of {sizes.kv_budget_tokens} tokens cannot hold one request of "
                              f"max_model_len {sizes.max_model_len} at block size {block_size}")
    return EngineSettings(
        model=str(model_dir), block_size=block_size, enable_prefix_caching=prefix_caching,
        kv_cache_bytes=sizes.kv_budget_tokens * shape.kv_bytes_per_token(tp), max_model_len=sizes.max_model_len,
        tensor_parallel_size=tp, kv_cache_dtype=kv_cache_dtype,
        max_num_batched_tokens=sizes.max_num_batched_tokens, load_format=load_format, enforce_eager=True,
        # Async scheduling (vLLM's CUDA default) books the next step's tokens before step() returns;
        # synchronous steps leave the pool between two complete steps, as the simulator models it.
        async_scheduling=False)


def serving_settings(model_dir, shape: ModelShape, sizes, load_format: str = "dummy", tp: int = 1,
                     enforce_eager: bool | None = None, kv_cache_dtype: str = "auto",
                     max_model_len: int | None = None) -> EngineSettings:
    """The throughput engine: vLLM's defaults for the device, except what `changed_settings` lists
    (a variant changes one more: eager or compiled, the KV cache dtype, the context length)."""
    kv_bytes = sizes.serving_kv_tokens * shape.kv_bytes_per_token() if sizes.serving_kv_tokens else None
    return EngineSettings(
        model=str(model_dir), block_size=sizes.serving_block_size, enable_prefix_caching=None,
        kv_cache_bytes=kv_bytes, max_model_len=max_model_len or sizes.max_model_len, max_num_seqs=None,
        max_num_batched_tokens=None, load_format=load_format, tensor_parallel_size=tp, kv_cache_dtype=kv_cache_dtype,
        enforce_eager=sizes.enforce_eager_throughput if enforce_eager is None else enforce_eager,
        fuse_allreduce_rms=False if tp > 1 else None)


def expected_blocks(shape: ModelShape, settings: EngineSettings) -> int:
    """num_gpu_blocks the KV arithmetic predicts for a fixed KV budget."""
    if settings.kv_cache_bytes is None:
        raise PagedBenchError("block count is predictable only with a fixed kv_cache_bytes")
    kv_shape = shape.with_kv_dtype(settings.kv_cache_dtype)
    return pool_blocks(settings.kv_cache_bytes, settings.block_size, kv_shape.kv_bytes_per_token(settings.tensor_parallel_size))
