"""A pytest plugin that plants a known slowdown, to prove the gate catches it.

    PAGEDBENCH_PLANT=fa3-is-triton PYTHONPATH=ci:. pytest -p plant ...     # FA3 ids time vLLM's Triton kernel
    PAGEDBENCH_PLANT=half-max-num-seqs PYTHONPATH=ci:. pytest -p plant ... # throughput engine at half its batch cap

Never loaded unless named with -p: the suite itself has no planted paths.
"""

import dataclasses
import os

PLANTS = ("fa3-is-triton", "half-max-num-seqs")


def pytest_configure(config):
    plant = os.environ.get("PAGEDBENCH_PLANT", "")
    if plant not in PLANTS:
        raise SystemExit(f"PAGEDBENCH_PLANT must be one of {PLANTS}, got {plant!r}")
    if plant == "fa3-is-triton":
        from pagedbench.kernels import implementations as kernels
        kernels.PAGED["fa3"] = kernels.PAGED["triton"]
    else:
        from pagedbench.engines import engine_settings
        real = engine_settings.serving_settings

        def halved(*args, **kwargs):
            s = real(*args, **kwargs)
            # 128: half of what the engine ran at before it took vLLM's defaults (256), a quarter of the
            # 80 GB Hopper default: the 320-request variable workload no longer fits one batch.
            return dataclasses.replace(s, max_num_seqs=128)
        # Before collection: the test modules import the name after this hook, so they get the halved one.
        engine_settings.serving_settings = halved
    config.addinivalue_line("markers", f"planted: {plant}")
    print(f"\nPLANTED SLOWDOWN: {plant}")
