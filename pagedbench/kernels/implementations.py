"""Decode attention kernels on one layer of a model's attention shape.

Paged implementations read K/V through a block table; contiguous ones read one
dense buffer per sequence. Every implementation is checked against an fp32
reference before it is timed. Timing is triton.testing.do_bench: CUDA events
around each call, the L2 cache flushed between calls, median over the reps.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass

from pagedbench.workloads.model import ModelShape


@dataclass(frozen=True)
class DecodeCase:
    batch: int
    context: int
    block_size: int = 16
    order: str = "shuffled"   # "in-order" block tables or "shuffled" (a long-running server's pool)
    kv_dtype: str = "auto"    # "auto": the model's dtype; "fp8": the paged cache in float8_e4m3fn

    def kv_bytes(self, shape: ModelShape) -> int:
        """K and V of one layer read once: the floor on the bytes a decode step moves."""
        elem = 1 if self.kv_dtype == "fp8" else shape.dtype_bytes
        return 2 * self.batch * self.context * shape.num_kv_heads * shape.head_dim * elem


@dataclass(eq=False)
class DecodeInputs:
    q: object              # (B, Hq, D)
    k: object              # (B, T, Hkv, D) contiguous
    v: object
    k_cache: object        # (num_blocks, block_size, Hkv, D) paged
    v_cache: object
    block_table: object    # (B, T / block_size) int32
    seq_lens: object       # (B,) int32
    scale: float
    _prefill_q: object = None


def fits(case: DecodeCase, shape: ModelShape, free_bytes: int, copies: int = 1) -> bool:
    # Contiguous + paged copies of K and V per input set, an fp32 reference chunk and slack for the kernels.
    return copies * 2 * case.kv_bytes(shape) * 1.25 < 0.8 * free_bytes


def make_inputs(case: DecodeCase, shape: ModelShape, seed: int = 0) -> DecodeInputs:
    import torch
    g = torch.Generator(device="cuda").manual_seed(seed)
    dt = getattr(torch, shape.dtype)
    B, T, Hkv, D = case.batch, case.context, shape.num_kv_heads, shape.head_dim
    if T % case.block_size:
        raise ValueError(f"context {T} is not a multiple of block size {case.block_size}")
    q = torch.randn(B, shape.num_q_heads, D, generator=g, device="cuda", dtype=dt)
    k = torch.randn(B, T, Hkv, D, generator=g, device="cuda", dtype=dt)
    v = torch.randn(B, T, Hkv, D, generator=g, device="cuda", dtype=dt)
    per_seq = T // case.block_size
    n_blocks = B * per_seq
    ids = torch.arange(n_blocks, device="cuda", dtype=torch.int32)
    if case.order == "shuffled":
        ids = ids[torch.randperm(n_blocks, generator=g, device="cuda")]
    block_table = ids.view(B, per_seq).contiguous()
    k_cache = torch.empty(n_blocks, case.block_size, Hkv, D, device="cuda", dtype=dt)
    v_cache = torch.empty_like(k_cache)
    flat = block_table.reshape(-1).long()
    k_cache[flat] = k.reshape(n_blocks, case.block_size, Hkv, D)
    v_cache[flat] = v.reshape(n_blocks, case.block_size, Hkv, D)
    seq_lens = torch.full((B,), T, device="cuda", dtype=torch.int32)
    return DecodeInputs(q, k, v, k_cache, v_cache, block_table, seq_lens, 1.0 / math.sqrt(D))


def with_fp8_cache(inp: DecodeInputs) -> DecodeInputs:
    """The same inputs with the paged K/V stored as float8_e4m3fn (scale 1: randn fits e4m3's range),
    as vLLM stores them with kv_cache_dtype="fp8"; the contiguous K/V stay the model's dtype."""
    import torch
    f8 = torch.float8_e4m3fn
    return dataclasses.replace(inp, k_cache=inp.k_cache.to(f8), v_cache=inp.v_cache.to(f8))


def fp8_reference(inp: DecodeInputs):
    """fp32 attention over the fp8-rounded K/V: what an fp8-cache kernel must compute (its error
    against this is the kernel's; against `reference` it adds the cache's rounding)."""
    import torch
    f8 = torch.float8_e4m3fn
    return reference(dataclasses.replace(inp, k=inp.k.to(f8).to(inp.k.dtype), v=inp.v.to(f8).to(inp.v.dtype)))


def reference(inp: DecodeInputs, chunk: int = 4):
    """fp32 attention of one query token per sequence over its whole context (GQA)."""
    import torch
    B, Hq, D = inp.q.shape
    Hkv = inp.k.shape[2]
    out = torch.empty(B, Hq, D, device="cuda", dtype=torch.float32)
    for s in range(0, B, chunk):
        q = inp.q[s:s + chunk].float().view(-1, Hkv, Hq // Hkv, D)
        k = inp.k[s:s + chunk].float()
        v = inp.v[s:s + chunk].float()
        scores = torch.einsum("bhgd,bthd->bhgt", q, k) * inp.scale
        out[s:s + chunk] = torch.einsum("bhgt,bthd->bhgd", scores.softmax(-1), v).reshape(-1, Hq, D)
    return out


def rel_error(out, ref) -> float:
    import torch
    out = out.float().reshape(ref.shape)
    if not torch.isfinite(out).all():
        return math.inf
    return (torch.linalg.vector_norm(out - ref) / torch.linalg.vector_norm(ref)).item()


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


def prefill_queries(inp: DecodeInputs, query_len: int):
    """Deterministic queries for the chunk (B * query_len, Hq, D), drawn once per input set."""
    import torch
    if getattr(inp, "_prefill_q", None) is None or inp._prefill_q.shape[0] != inp.q.shape[0] * query_len:
        g = torch.Generator(device="cuda").manual_seed(1)
        inp._prefill_q = torch.randn(inp.q.shape[0] * query_len, *inp.q.shape[1:], generator=g,
                                     device="cuda", dtype=inp.q.dtype)
    return inp._prefill_q


def prefill_reference(inp: DecodeInputs, query_len: int):
    """fp32 causal attention of the last query_len positions over the whole context."""
    import torch
    B, T, Hkv, D = inp.k.shape
    Hq = inp.q.shape[1]
    q_all = prefill_queries(inp, query_len).view(B, query_len, Hq, D)
    out = torch.empty(B * query_len, Hq, D, device="cuda", dtype=torch.float32)
    pos_q = torch.arange(T - query_len, T, device="cuda")
    mask = pos_q[:, None] >= torch.arange(T, device="cuda")[None, :]       # (Lq, T)
    for b in range(B):
        q = q_all[b].float().view(query_len, Hkv, Hq // Hkv, D)
        k, v = inp.k[b].float(), inp.v[b].float()
        s = torch.einsum("qhgd,thd->hgqt", q, k) * inp.scale
        s = s.masked_fill(~mask, float("-inf"))
        o = torch.einsum("hgqt,thd->qhgd", s.softmax(-1), v)
        out[b * query_len:(b + 1) * query_len] = o.reshape(query_len, Hq, D)
    return out


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


def do_bench(call, warmup_ms: int = 25, rep_ms: int = 50) -> tuple[float, float]:
    """(median seconds, relative spread) of one call: CUDA events, L2 flushed before each rep."""
    import triton.testing
    q20, q50, q80 = triton.testing.do_bench(call, warmup=warmup_ms, rep=rep_ms, quantiles=[0.2, 0.5, 0.8])
    return q50 / 1e3, (q80 - q20) / q50 if q50 else 0.0


def copy_bandwidth_gbps(nbytes: int = 2 << 30) -> float:
    """Practical peak: a large device-to-device copy, counting bytes read plus bytes written."""
    import torch
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    src.random_(0, 255)
    dst = torch.empty_like(src)
    seconds, _ = do_bench(lambda: dst.copy_(src), warmup_ms=50, rep_ms=200)
    torch.cuda.empty_cache()  # src/dst go when this frame returns
    return 2 * nbytes / seconds / 1e9
