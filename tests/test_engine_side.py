"""A comparison's second engine in a process of its own (pagedbench.engine_side): what comes back, and a
refusal in the child becomes a skip quoting vLLM."""

import pytest

from pagedbench import engine_side, tiers, workloads
from pagedbench.errors import PagedBenchError, StartError
from pagedbench.kv import load_shape, resolve_model_dir
from pagedbench.vllm_engine import expected_blocks, serving_settings


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
