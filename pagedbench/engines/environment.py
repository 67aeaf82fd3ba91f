"""The environment variables the suite gives vLLM, in one place.

Processes the suite starts (`vllm serve`, vLLM's own benchmarks, the engine side) get an explicit
environment from child_env(): this process's, without the in-process switch, plus what the caller
adds. The parent's os.environ is not changed for them.

An engine built in this process (vllm_offline.VLLMEngine: the suite reads its scheduler and block
pool) has no way to be handed an environment: vLLM reads its settings from os.environ through
vllm.envs, at engine construction and later (the sampler's first use). prepare_in_process() sets
those, once per process and idempotently, just before the first such engine is built.
"""

from __future__ import annotations

import os

# In-process engine core: the scheduler (and its block pool) is reachable. With TP > 1 the
# workers are still separate processes (vLLM's multiprocessing executor over NCCL).
IN_PROCESS = "VLLM_ENABLE_V1_MULTIPROCESSING"

# NVLink multicast can put a shared host's GPUs out of service: every process of a multi-GPU
# engine (workers inherit this environment) keeps it off.
NO_MULTICAST = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}

# Defaults for every vLLM process, kept where the user set them: FlashInfer's sampler costs a
# minutes-long JIT on a fresh GPU machine; tokenizers' thread pool warns (and can deadlock) across a fork.
DEFAULTS = {"VLLM_USE_FLASHINFER_SAMPLER": "0", "TOKENIZERS_PARALLELISM": "false"}


def child_env(extra=()) -> dict[str, str]:
    """The environment of a vLLM process this suite starts: ours without the in-process switch (the
    child runs at vLLM's default process layout), vLLM's defaults above, then `extra`."""
    env = {k: v for k, v in os.environ.items() if k != IN_PROCESS}
    for key, value in DEFAULTS.items():
        env.setdefault(key, value)
    env.update(extra)
    return env


def prepare_in_process(tensor_parallel: bool) -> None:
    """What vLLM reads for an engine core in this process (see the module's docstring)."""
    os.environ[IN_PROCESS] = "0"
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    if tensor_parallel:
        os.environ.update(NO_MULTICAST)
