"""A pytest plugin that plants a known slowdown, to prove the gate catches it.

    PAGEDBENCH_PLANT=fa3-is-triton PYTHONPATH=ci:. pytest -p plant ...     # FA3 ids time vLLM's Triton kernel
    PAGEDBENCH_PLANT=half-max-num-seqs PYTHONPATH=ci:. pytest -p plant ... # throughput engine at half its batch cap
    PAGEDBENCH_PLANT=serving-low-batched-tokens ...   # `vllm serve` at a quarter of its default token budget
    PAGEDBENCH_PLANT=serving-low-max-num-seqs ...     # `vllm serve` with at most 32 requests in a batch

The settings plants are what a vLLM upgrade does under the suite: a new default for the device. They
change what reaches vLLM (the server's command line, the engine's keyword arguments), not the
settings the suite asks for, so the run records the same asked settings and what vLLM resolved
differently, which the gate compares and names (gate.gate: "vLLM resolved ...").

Never loaded unless named with -p: the suite itself has no planted paths.
"""

import os

PLANTS = ("fa3-is-triton", "half-max-num-seqs", "serving-low-batched-tokens", "serving-low-max-num-seqs")
# A quarter of what `vllm serve` resolves max_num_batched_tokens to (vllm/engine/arg_utils.py, OpenAI API
# server): 8192 on a GPU of >= 70 GiB (H100, H200), 2048 on the CPU. Prefill chunks of a quarter the size.
LOW_BATCHED_TOKENS = {"gpu": 2048, "cpu": 512}
# The server's default is 1024 on an H100/H200 (128 on the CPU): the unbounded-rate loads (200 requests)
# and concurrency 64/256 then queue behind 32 running requests.
LOW_MAX_NUM_SEQS = 32


def pytest_configure(config):
    plant = os.environ.get("PAGEDBENCH_PLANT", "")
    if plant not in PLANTS:
        raise SystemExit(f"PAGEDBENCH_PLANT must be one of {PLANTS}, got {plant!r}")
    if plant.startswith("serving-"):
        plant_serving(plant)
    elif plant == "fa3-is-triton":
        from pagedbench.kernels import implementations as kernels
        kernels.PAGED["fa3"] = kernels.PAGED["triton"]
    else:
        from pagedbench.engines.engine_settings import EngineSettings
        real_kwargs = EngineSettings.llm_kwargs

        def halved(self):
            # 128: half of what the engine ran at before it took vLLM's defaults (256), a quarter of the
            # 80 GB Hopper default: the 320-request variable workload no longer fits one batch.
            return {**real_kwargs(self), "max_num_seqs": 128}
        EngineSettings.llm_kwargs = halved
    config.addinivalue_line("markers", f"planted: {plant}")
    print(f"\nPLANTED SLOWDOWN: {plant}")


def plant_serving(plant: str) -> None:
    from pagedbench.engines.vllm_server import ServerSettings
    real_argv = ServerSettings.argv

    def planted(self, port):
        if plant == "serving-low-batched-tokens":
            extra = ["--max-num-batched-tokens", str(LOW_BATCHED_TOKENS[self.kind])]
        else:
            extra = ["--max-num-seqs", str(LOW_MAX_NUM_SEQS)]
        return real_argv(self, port) + extra  # the last occurrence of a flag wins in vLLM's parser
    ServerSettings.argv = planted
