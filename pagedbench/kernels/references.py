"""What a kernel must compute: fp32 attention over the same inputs, for decode, for an fp8 cache and for a
chunked-prefill query, and the relative error a kernel's output is judged by."""

from __future__ import annotations

import dataclasses
import math

from pagedbench.kernels.decode_inputs import DecodeInputs


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


def fp8_reference(inp: DecodeInputs):
    """fp32 attention over the fp8-rounded K/V: what an fp8-cache kernel must compute (its error
    against this is the kernel's; against `reference` it adds the cache's rounding)."""
    import torch
    f8 = torch.float8_e4m3fn
    return reference(dataclasses.replace(inp, k=inp.k.to(f8).to(inp.k.dtype), v=inp.v.to(f8).to(inp.v.dtype)))


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
