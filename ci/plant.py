"""A pytest plugin that plants a known slowdown, to prove the gate catches it.

    PAGEDBENCH_PLANT=fa3-is-triton PYTHONPATH=ci:. pytest -p plant ...     # FA3 ids time vLLM's Triton kernel
    PAGEDBENCH_PLANT=half-max-num-seqs PYTHONPATH=ci:. pytest -p plant ... # throughput engine at half its batch cap
    PAGEDBENCH_PLANT=serving-low-batched-tokens ...   # `vllm serve` at a quarter of its default token budget
    PAGEDBENCH_PLANT=serving-low-max-num-seqs ...     # `vllm serve` with at most 32 requests in a batch

The serving plants are settings a vLLM upgrade could change under the suite (a new default for the
device); they go through the tier's own server settings, so the run records them as it would a real one.

Never loaded unless named with -p: the suite itself has no planted paths.
"""

import dataclasses
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
        from pagedbench.engines import vllm_offline as vllm_engine
        real = vllm_engine.serving_settings

        def halved(*args, **kwargs):
            s = real(*args, **kwargs)
            # 128: half of what the engine ran at before it took vLLM's defaults (256), a quarter of the
            # 80 GB Hopper default: the 320-request variable workload no longer fits one batch.
            return dataclasses.replace(s, max_num_seqs=128)
        vllm_engine.serving_settings = halved
        import tests.test_throughput as tt  # the test module imported the name: patch it there too
        tt.serving_settings = halved
    config.addinivalue_line("markers", f"planted: {plant}")
    print(f"\nPLANTED SLOWDOWN: {plant}")


def plant_serving(plant: str) -> None:
    from pagedbench.workloads import serving_mixes
    real = serving_mixes.server_settings

    def planted(*args, **kwargs):
        s = real(*args, **kwargs)
        if plant == "serving-low-batched-tokens":
            return dataclasses.replace(s, max_num_batched_tokens=LOW_BATCHED_TOKENS[s.kind])
        return dataclasses.replace(s, max_num_seqs=LOW_MAX_NUM_SEQS)
    serving_mixes.server_settings = planted  # tests/benchmarks/test_serving.py calls it through the module
