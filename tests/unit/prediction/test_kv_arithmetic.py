"""The PagedAttention tutorial's tables for LLaMA-7B fp16, from the suite's KV arithmetic.

Expected values are worked out here from first principles (0.5 MiB per token,
ceil division by hand), not by calling the code under test.
"""

import math

import pytest

from pagedbench.prediction import kv_arithmetic as kv
from pagedbench.workloads import requests as workloads
from pagedbench.workloads.model import load_shape, shape_from_config

MIB = 1 << 20
GIB = 1 << 30
LLAMA7B_BPT = 2 * 32 * 32 * 128 * 2       # K+V x layers x heads x head_dim x fp16 = 0.5 MiB
LLAMA31_8B_BPT = 2 * 32 * 8 * 128 * 2     # GQA: 8 KV heads, bf16 = 128 KiB


def test_bytes_per_token_of_shipped_models():
    assert load_shape("llama-7b").kv_bytes_per_token() == LLAMA7B_BPT == 512 * 1024
    assert load_shape("llama-3.1-8b").kv_bytes_per_token() == LLAMA31_8B_BPT == 128 * 1024
    tiny = load_shape("tiny-llama")
    assert tiny.kv_bytes_per_token() == 2 * 2 * 2 * 32 * 2
    seventy = load_shape("llama-3.1-70b")
    assert seventy.kv_bytes_per_token() == 2 * 80 * 8 * 128 * 2
    assert seventy.kv_bytes_per_token(tp=2) == 2 * 80 * 4 * 128 * 2   # each GPU holds half the KV heads


def test_table1_memory_waste_100_users():
    lengths = workloads.seed_mix().total_lens
    assert len(lengths) == 100
    contiguous = kv.contiguous_allocation(lengths, 2048, LLAMA7B_BPT)
    assert contiguous.allocated_bytes == 100 * 2048 * MIB // 2 == 100 * GIB
    assert contiguous.used_bytes == sum(lengths) * MIB // 2
    assert contiguous.waste_pct == pytest.approx(100 * (1 - sum(lengths) / (100 * 2048)))
    paged = kv.paged_allocation(lengths, 16, LLAMA7B_BPT)
    blocks = sum(math.ceil(n / 16) for n in lengths)
    assert paged.allocated_bytes == blocks * 16 * MIB // 2
    assert paged.wasted_bytes == (blocks * 16 - sum(lengths)) * MIB // 2
    assert 0 < paged.waste_pct < 4 < 60 < contiguous.waste_pct  # paging wastes under a block per user


def test_table2_concurrent_users_under_budget():
    budget = int(12.8e9)  # the tutorial's 12.8 GB, decimal
    # Contiguous: every user reserves 2048 x 0.5 MiB = 1 GiB.
    assert kv.max_users_contiguous(budget, 2048, LLAMA7B_BPT) == int(12.8e9 // GIB) == 11
    # Paged: a 500-token user holds ceil(500/16) = 32 blocks of 8 MiB.
    assert kv.max_users_paged(budget, 500, 16, LLAMA7B_BPT) == (budget // (16 * MIB // 2)) // 32 == 47


def test_table3_prefix_sharing_100_users():
    s = kv.prefix_sharing(n_users=100, shared_len=500, unique_len=100, block_size=16)
    assert s.tokens_unshared == 100 * 600
    assert s.tokens_ideal == 500 + 100 * 100
    assert s.ideal_savings_pct == pytest.approx(100 * (1 - 10500 / 60000))
    # Only the 31 full blocks of the prefix (496 tokens) are shareable; each user keeps 104 tokens = 7 blocks.
    assert s.blocks_unshared == 100 * 38
    assert s.blocks_shared == 31 + 100 * 7
    assert s.block_savings_pct == pytest.approx(100 * (1 - 731 / 3800))


@pytest.mark.parametrize("block_size", [8, 16, 32])
def test_table4_fragmentation_per_block_size(block_size):
    lengths = workloads.seed_mix().total_lens
    wasted, pct = kv.fragmentation(lengths, block_size)
    by_hand = sum(math.ceil(n / block_size) * block_size - n for n in lengths)
    assert wasted == by_hand
    assert 0 <= wasted < 100 * block_size          # under one block per sequence
    assert pct == pytest.approx(100 * by_hand / (by_hand + sum(lengths)))


def test_fragmentation_grows_with_block_size():
    lengths = workloads.seed_mix().total_lens
    assert kv.fragmentation(lengths, 8)[0] < kv.fragmentation(lengths, 16)[0] < kv.fragmentation(lengths, 32)[0]


def test_any_hf_config_shape():
    gpt2 = {"n_layer": 12, "n_head": 12, "n_embd": 768}      # no KV heads, no head_dim, no dtype
    s = shape_from_config(gpt2)
    assert (s.num_layers, s.num_kv_heads, s.head_dim, s.dtype_bytes) == (12, 12, 64, 4)
    falcon = {"num_hidden_layers": 32, "num_attention_heads": 71, "hidden_size": 4544, "multi_query": True,
              "torch_dtype": "bfloat16"}
    assert shape_from_config(falcon).kv_bytes_per_token() == 2 * 32 * 1 * 64 * 2
    wrapped = {"text_config": {"num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 2,
                               "head_dim": 32}, "dtype": "float16"}
    assert shape_from_config(wrapped).kv_bytes_per_token() == 2 * 4 * 2 * 32 * 2


def test_tensor_parallel_arithmetic():
    llama8b = load_shape("llama-3.1-8b")
    # TP 2: 4 of the 8 KV heads per GPU; TP 16: heads replicated, one per GPU.
    assert llama8b.kv_bytes_per_token(tp=2) == 2 * 32 * 4 * 128 * 2
    assert llama8b.kv_bytes_per_token(tp=16) == 2 * 32 * 1 * 128 * 2
    with pytest.raises(kv.PagedBenchError, match="do not split"):
        llama8b.kv_bytes_per_token(tp=3)
    seventy = load_shape("llama-3.1-70b")
    per_gpu = 40 * GIB
    # 70B at TP 2: 160 KiB per token per GPU; 500-token users hold ceil(500/16) = 32 blocks of 2.5 MiB.
    assert kv.max_users_tp(per_gpu, 500, 16, seventy, tp=2) == (per_gpu // (16 * 160 * 1024)) // 32
    assert kv.max_users_tp(per_gpu, 500, 16, seventy, tp=2) == 2 * kv.max_users_tp(per_gpu, 500, 16, seventy, tp=1)


def test_a_kernel_case_reads_half_the_bytes_from_an_fp8_cache():
    """The kernel tier's bytes per decode step (its GB/s): one layer's K and V, 1 byte per element in fp8."""
    from pagedbench.kernels.decode_inputs import DecodeCase

    llama8b = load_shape("llama-3.1-8b")
    bf16 = DecodeCase(32, 8192, 16, "shuffled")
    assert bf16.kv_bytes(llama8b) == 2 * 32 * 8192 * 8 * 128 * 2 == 32 * 8192 * LLAMA31_8B_BPT // 32
    assert DecodeCase(32, 8192, 16, "shuffled", kv_dtype="fp8").kv_bytes(llama8b) == bf16.kv_bytes(llama8b) // 2
