"""Decode attention implementations on one layer of a model's attention shape.

Paged implementations read K/V through a block table; contiguous ones read one
dense buffer per sequence. Each builder returns a call and a label, or raises
ImplUnavailable with the reason it cannot run here. The harness (kernels/harness.py)
checks every implementation against the fp32 reference (kernels/references.py)
before timing it by CUDA-graph replay (meters/kernel_timing.py's GraphReplay).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from pagedbench.kernels.decode_inputs import DecodeCase, DecodeInputs, make_inputs, with_fp8_cache
from pagedbench.kernels.references import prefill_queries
from pagedbench.workloads.model import ModelShape

# ---- implementations ---------------------------------------------------------------------
# Each builder returns (call, label) or raises ImplUnavailable with the reason it cannot run here.

class ImplUnavailable(RuntimeError):
    pass


def _cu_q(B):
    import torch
    return torch.arange(B + 1, device="cuda", dtype=torch.int32)


def vllm_flash_attn():
    """vLLM's FlashAttention varlen function and the newest FA version this GPU runs (3, else 2)."""
    try:
        from vllm.vllm_flash_attn import flash_attn_varlen_func, is_fa_version_supported
    except ImportError as exc:
        raise ImplUnavailable(f"vllm.vllm_flash_attn does not import: {exc}") from exc
    version = 3 if is_fa_version_supported(3) else 2
    if not is_fa_version_supported(version):
        raise ImplUnavailable("vllm_flash_attn supports neither FA3 nor FA2 on this GPU")
    return flash_attn_varlen_func, version


def _fa_through_block_table(fa, inp: DecodeInputs, case: DecodeCase, q, cu_q, max_seqlen_q: int):
    """FlashAttention over the paged cache, as vLLM's FlashAttention backend calls it; fa is
    vllm_flash_attn()'s (function, version)."""
    varlen, version = fa

    def call():
        return varlen(q, inp.k_cache, inp.v_cache, max_seqlen_q=max_seqlen_q, cu_seqlens_q=cu_q,
                      max_seqlen_k=case.context, seqused_k=inp.seq_lens, softmax_scale=inp.scale,
                      causal=True, block_table=inp.block_table, fa_version=version)
    return call


def fa3_paged(inp: DecodeInputs, case: DecodeCase):
    fa = vllm_flash_attn()
    return _fa_through_block_table(fa, inp, case, inp.q, _cu_q(case.batch), 1), f"vllm_flash_attn FA{fa[1]}, block table"


def fa3_prefill(inp: DecodeInputs, case: DecodeCase, query_len: int):
    """Chunked prefill: the last query_len tokens of each sequence, causal, through the block table."""
    fa = vllm_flash_attn()
    import torch
    q = prefill_queries(inp, query_len)
    cu_q = torch.arange(0, (case.batch + 1) * query_len, query_len, device="cuda", dtype=torch.int32)
    return (_fa_through_block_table(fa, inp, case, q, cu_q, query_len),
            f"vllm_flash_attn FA{fa[1]}, block table, {query_len}-token chunk")


def fa3_contiguous(inp: DecodeInputs, case: DecodeCase):
    """The same FlashAttention kernels on a dense K/V per sequence (no block table)."""
    varlen, version = vllm_flash_attn()
    import torch
    B, T = case.batch, case.context
    k = inp.k.reshape(B * T, *inp.k.shape[2:])
    v = inp.v.reshape(B * T, *inp.v.shape[2:])
    cu_k = torch.arange(0, (B + 1) * T, T, device="cuda", dtype=torch.int32)
    cu_q = _cu_q(B)

    def call():
        return varlen(inp.q, k, v, max_seqlen_q=1, cu_seqlens_q=cu_q, max_seqlen_k=T, cu_seqlens_k=cu_k,
                      softmax_scale=inp.scale, causal=True, fa_version=version)
    return call, f"vllm_flash_attn FA{version}, contiguous varlen"


def flash_attn_pkg(inp: DecodeInputs, case: DecodeCase):
    """Upstream flash-attn's decode path on a contiguous cache, when the package is installed."""
    if importlib.util.find_spec("flash_attn") is None:
        raise ImplUnavailable("flash-attn is not installed (no PyPI wheel; its source build takes hours)")
    try:
        from flash_attn import flash_attn_with_kvcache
    except ImportError as exc:
        raise ImplUnavailable(f"flash_attn does not import: {exc}") from exc
    q = inp.q.unsqueeze(1)

    def call():
        return flash_attn_with_kvcache(q, inp.k, inp.v, cache_seqlens=inp.seq_lens, softmax_scale=inp.scale,
                                       causal=True)
    return call, "flash_attn.flash_attn_with_kvcache, contiguous"


def flashinfer_paged(inp: DecodeInputs, case: DecodeCase):
    try:
        import flashinfer
    except ImportError as exc:
        raise ImplUnavailable(f"flashinfer does not import: {exc}") from exc
    import torch
    B, per_seq = inp.block_table.shape
    # Split-KV scratch grows with batch x heads x splits: small cases (the rotated ones, many
    # wrappers at once) need little of it.
    small = 2 * inp.k.numel() * inp.k.element_size() < 64 << 20
    ws = torch.empty((32 if small else 256) << 20, dtype=torch.uint8, device="cuda")
    indptr = torch.arange(0, (B + 1) * per_seq, per_seq, device="cuda", dtype=torch.int32)
    indices = inp.block_table.reshape(-1).contiguous()
    last = torch.full((B,), case.block_size, device="cuda", dtype=torch.int32)
    # Fixed index buffers: the wrapper's documented mode for CUDA-graph capture, which the timing uses.
    wrapper = flashinfer.BatchDecodeWithPagedKVCacheWrapper(
        ws, "NHD", use_cuda_graph=True, paged_kv_indptr_buffer=indptr, paged_kv_indices_buffer=indices,
        paged_kv_last_page_len_buffer=last)
    wrapper.plan(indptr, indices, last, inp.q.shape[1], inp.k.shape[2], inp.q.shape[2],
                 case.block_size, q_data_type=inp.q.dtype, kv_data_type=inp.k_cache.dtype, sm_scale=inp.scale)

    def call():
        return wrapper.run(inp.q, (inp.k_cache, inp.v_cache))
    return call, f"flashinfer {getattr(flashinfer, '__version__', '?')} BatchDecodeWithPagedKVCacheWrapper"


def triton_unified(inp: DecodeInputs, case: DecodeCase):
    try:
        from vllm.v1.attention.ops.triton_unified_attention import unified_attention
    except ImportError as exc:
        raise ImplUnavailable(f"vLLM's Triton unified attention does not import: {exc}") from exc
    import torch
    out = torch.empty_like(inp.q)
    cu_q = _cu_q(case.batch)
    descale = None
    if inp.k_cache.dtype == torch.float8_e4m3fn:  # vLLM's triton backend: per-tensor scales, (seqs, kv heads)
        descale = torch.ones(1, device="cuda", dtype=torch.float32).expand(case.batch, inp.k_cache.shape[2])

    def call():
        unified_attention(q=inp.q, k=inp.k_cache, v=inp.v_cache, out=out, cu_seqlens_q=cu_q, max_seqlen_q=1,
                          seqused_k=inp.seq_lens, max_seqlen_k=case.context, softmax_scale=inp.scale, causal=True,
                          window_size=(-1, -1), block_table=inp.block_table, softcap=0, q_descale=None,
                          k_descale=descale, v_descale=descale)
        return out
    return call, "vllm triton unified_attention"


def torch_sdpa(inp: DecodeInputs, case: DecodeCase):
    """PyTorch's scaled_dot_product_attention on the contiguous cache: the framework baseline."""
    import torch.nn.functional as F
    q = inp.q.unsqueeze(2)                          # (B, Hq, 1, D)
    k = inp.k.transpose(1, 2)                       # (B, Hkv, T, D): a view, no copy
    v = inp.v.transpose(1, 2)

    def call():
        return F.scaled_dot_product_attention(q, k, v, scale=inp.scale, enable_gqa=True)
    return call, "torch.nn.functional.scaled_dot_product_attention, contiguous"


PAGED: dict[str, Callable] = {"fa3": fa3_paged, "flashinfer": flashinfer_paged, "triton": triton_unified}
# An fp8 cache with a query in the model's dtype, as vLLM runs kv_cache_dtype="fp8" with these backends
# (its FA3 path quantizes the query to fp8 too: other math, left out).
PAGED_FP8: dict[str, Callable] = {"flashinfer": flashinfer_paged, "triton": triton_unified}
CONTIGUOUS: dict[str, Callable] = {"fa3_contiguous": fa3_contiguous, "flash_attn": flash_attn_pkg, "torch_sdpa": torch_sdpa}


def fp8_name(impl: str) -> str:
    return f"{impl}-fp8"


def warm_up(shape: ModelShape, builders: dict[str, Callable], fp8_builders: dict[str, Callable] | None = None
            ) -> tuple[dict[str, str], dict[str, str]]:
    """Run every implementation once on a small case before any is timed: module loads, JIT builds
    and autotuning happen here (fp8-cache variants under fp8_name). Returns (why each unavailable
    implementation cannot run here, the error of each that raised): the cases of an unavailable one
    skip, those of a broken one fail with its error, the others run."""
    import torch
    case = DecodeCase(1, 512, 16, "in-order")
    inp = make_inputs(case, shape, seed=7)
    variants = [(name, builder, inp) for name, builder in builders.items()]
    variants += [(fp8_name(name), builder, with_fp8_cache(inp)) for name, builder in (fp8_builders or {}).items()]
    unavailable, broken = {}, {}
    for name, builder, variant in variants:
        try:
            call, _ = builder(variant, case)
            for _ in range(3):
                call()
            torch.cuda.synchronize()
        except ImplUnavailable as exc:
            unavailable[name] = str(exc)
        except Exception as exc:  # noqa: BLE001 - one broken kernel must not take the others' cases down
            broken[name] = f"{type(exc).__name__}: {exc}"
    torch.cuda.synchronize()
    return unavailable, broken
