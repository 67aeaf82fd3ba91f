"""A comparison's second engine in a process of its own, on a real (tiny, CPU) vLLM engine."""

import pytest

from pagedbench.engines import side_process as engine_side
from pagedbench.engines.engine_settings import expected_blocks, serving_settings
from pagedbench.workloads import requests as workloads
from pagedbench.workloads import tier_sizes as tiers
from pagedbench.workloads.model import load_shape, resolve_model_dir


def test_the_side_runs_and_reports_back(tmp_path):
    pytest.importorskip("vllm")
    model_dir = resolve_model_dir(tiers.CPU.model)
    shape = load_shape(model_dir)
    settings = serving_settings(model_dir, shape, tiers.CPU)
    wl = workloads.uniform_io(4, seed=1, vocab_size=4096, lo=8, hi=16)
    side = engine_side.run_side(settings, wl, 2, dict(model_dir=str(model_dir), device="cpu", load_format="dummy"),
                                tmp_path, 300)
    assert len(side.rounds) == 2
    assert all(p == sum(wl.prompt_lens) and o == sum(r.output_len for r in wl.requests) and t > 0
               for p, o, t in side.rounds)
    assert side.num_gpu_blocks == expected_blocks(shape, settings)
    assert side.check_ids and all(len(ids) > 0 for ids in side.check_ids)
    assert side.effective["block_size"] == settings.block_size
