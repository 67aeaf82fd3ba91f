"""The output check's seeded weights separate rounding from a broken KV cache (HF transformers on the CPU).

A small Llama (hidden 256, 8 heads, 2 KV heads) with the check's weights decodes the check requests greedily
in fp32 (the reference), in bf16 (rounding only) and in fp32 with 16 prompt positions lost (what a cache that
lost a block shows). The check can only tell a regression from rounding when the second agrees more.
PAGEDBENCH_CHECK_LAYERS=32 runs it at the 8B's depth (about 2 minutes on 2 cores).
"""

import os

import pytest

from pagedbench.engines.output_check import check_workload, seeded_llama_weights
from pagedbench.metrics.token_agreement import Agreement

LAYERS = int(os.environ.get("PAGEDBENCH_CHECK_LAYERS", "4"))
CONFIG = dict(model_type="llama", hidden_size=256, intermediate_size=768, vocab_size=4096, num_attention_heads=8,
              num_key_value_heads=2, head_dim=32, num_hidden_layers=LAYERS, tie_word_embeddings=False,
              rms_norm_eps=1e-5, rope_theta=500000.0, max_position_embeddings=4096)


torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(autouse=True)
def one_thread():
    """Matrices this small gain nothing from a second thread, and OpenMP threads that spin for a core another
    process holds make the decode many times slower on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def greedy(dtype, lose_block: bool = False, requests: int | None = None) -> list[tuple[int, ...]]:
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        **{k: v for k, v in CONFIG.items() if k != "model_type"})).to(dtype).eval()
    model.load_state_dict({k: v.to(dtype) for k, v in seeded_llama_weights(CONFIG)})
    outs = []
    for req in check_workload(CONFIG["vocab_size"]).requests[:requests]:
        ids = torch.tensor([list(req.prompt_token_ids)])
        if lose_block:
            ids = torch.cat([ids[:, :8], ids[:, 24:]], 1)
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=32, min_new_tokens=32, do_sample=False, pad_token_id=0,
                                 eos_token_id=None)
        outs.append(tuple(out[0, ids.shape[1]:].tolist()))
    return outs


def test_rounding_agrees_more_than_a_lost_block():
    reference = greedy(torch.float32)
    # Greedy decoding of the same weights is deterministic (a fresh model; a few requests show it).
    assert greedy(torch.float32, requests=3) == reference[:3]
    rounding = Agreement.of(reference, greedy(torch.bfloat16))
    lost = Agreement.of(reference, greedy(torch.float32, lose_block=True))
    print(f"{LAYERS} layers: bf16 {rounding.token_agreement:.3f} {rounding.matched}; "
          f"lost block {lost.token_agreement:.3f} {lost.matched}")
    assert rounding.token_agreement >= 0.4
    assert lost.token_agreement <= 0.25
    assert rounding.token_agreement >= 2 * lost.token_agreement
