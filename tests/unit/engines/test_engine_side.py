"""A comparison's second engine in a process of its own (pagedbench.engines.side_process): what comes back, and a
refusal in the child becomes a skip quoting vLLM."""

import pytest

from pagedbench.engines import side_process as engine_side
from pagedbench.engines.engine_settings import serving_settings
from pagedbench.errors import PagedBenchError, StartError
from pagedbench.workloads import requests as workloads
from pagedbench.workloads import tier_sizes as tiers
from pagedbench.workloads.model import load_shape, resolve_model_dir


def tiny_settings():
    model_dir = resolve_model_dir(tiers.CPU.model)
    return serving_settings(model_dir, load_shape(model_dir), tiers.CPU)


def test_a_refusal_in_the_child_is_marked_unsupported(monkeypatch, tmp_path):
    # what the child writes when vLLM refuses the start: the engine's own words
    refused = {"start_error": "NotImplementedError: FP8 KV cache on CPU requires AVX512 or AMX"}
    monkeypatch.setattr(engine_side, "run_child", lambda *_a, **_k: (refused, tmp_path / "x.log"))
    with pytest.raises(StartError) as err:
        engine_side.run_side(tiny_settings(), workloads.single_prompt(8, 2, vocab_size=64), 1, {}, tmp_path, 10)
    assert err.value.unsupported
    assert str(err.value).startswith("NotImplementedError: FP8 KV cache on CPU requires AVX512 or AMX")


def test_a_crash_in_the_child_is_not_a_refusal(monkeypatch, tmp_path):
    monkeypatch.setattr(engine_side, "run_child", lambda *a, **k: (_ for _ in ()).throw(
        PagedBenchError("engine side failed (exit -9, log: x.log):\nKilled")))
    with pytest.raises(StartError) as err:
        engine_side.run_side(tiny_settings(), workloads.single_prompt(8, 2, vocab_size=64),
                             1, {}, tmp_path, 10)
    assert not err.value.unsupported
