"""Bad input is refused before any work, with a message naming the problem."""

import json

import pytest

from pagedbench.errors import ConfigError, PagedBenchError
from pagedbench.prediction import kv_arithmetic as kv
from pagedbench.prediction.allocator import KVCacheManager
from pagedbench.prediction.simulator import SchedulerLimits, simulate
from pagedbench.workloads import requests as workloads
from pagedbench.workloads.model import load_shape


def test_unreadable_config(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"config\.json: not valid JSON"):
        load_shape(tmp_path)


def test_missing_config(tmp_path):
    with pytest.raises(ConfigError, match="no config.json"):
        load_shape(tmp_path)


@pytest.mark.parametrize("cfg, field", [
    ({"num_attention_heads": 8, "hidden_size": 512}, "num_hidden_layers"),
    ({"num_hidden_layers": 2, "hidden_size": 512}, "num_attention_heads"),
    ({"num_hidden_layers": 2, "num_attention_heads": 8}, "hidden_size"),
    ({"num_hidden_layers": 0, "num_attention_heads": 8, "hidden_size": 512}, "num_hidden_layers"),
    ({"num_hidden_layers": 2, "num_attention_heads": 8, "hidden_size": 512, "torch_dtype": "float7"}, "dtype"),
])
def test_incomplete_config(tmp_path, cfg, field):
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match=field):
        load_shape(tmp_path)


@pytest.mark.parametrize("bad", [0, -16, 1.5, True])
def test_bad_block_size(bad):
    with pytest.raises(PagedBenchError, match="block size"):
        kv.paged_allocation([10, 20], bad, 1024)
    with pytest.raises(PagedBenchError, match="block size"):
        KVCacheManager(64, bad)


def test_budget_smaller_than_one_block():
    with pytest.raises(PagedBenchError, match="smaller than one block"):
        kv.pool_blocks(1000, 16, 1024)


def test_empty_workload():
    with pytest.raises(PagedBenchError, match="empty"):
        kv.paged_allocation([], 16, 1024)
    with pytest.raises(PagedBenchError, match="empty"):
        workloads.Workload("none", (), 2048, 0)


def test_request_longer_than_max_seq_len():
    with pytest.raises(PagedBenchError, match="exceeds max_seq_len"):
        kv.contiguous_allocation([4096], 2048, 1024)


def test_simulator_refuses_request_bigger_than_pool():
    wl = workloads.Workload("big", (workloads.Request(tuple(range(10, 1010)), 2),), 2048, 0)
    with pytest.raises(PagedBenchError, match="more than the pool"):
        simulate(wl, SchedulerLimits(num_blocks=8, block_size=16))


def test_bad_sharegpt(tmp_path):
    bad = tmp_path / "sg.json"
    bad.write_text('{"not": "a list"}')
    with pytest.raises(PagedBenchError, match="sg.json"):
        workloads.sharegpt(bad)


def test_sharegpt_lengths(tmp_path):
    f = tmp_path / "sg.json"
    f.write_text(json.dumps([{"conversations": [{"from": "human", "value": "a b c d"},
                                                {"from": "gpt", "value": "x y"}]}]))
    (req,) = workloads.sharegpt(f, tokens_per_word=1.0).requests
    assert (req.prompt_len, req.output_len) == (4, 2)


def test_kv_budget_smaller_than_one_request_fails_before_any_engine():
    from dataclasses import replace

    from pagedbench.engines.engine_settings import block_pool_settings
    from pagedbench.workloads import tier_sizes as tiers

    tiny = load_shape("tiny-llama")
    small = replace(tiers.CPU, kv_budget_tokens=1000)
    with pytest.raises(PagedBenchError, match="cannot hold one request of max_model_len 2048"):
        block_pool_settings(tiny.path, tiny, small, block_size=32)
