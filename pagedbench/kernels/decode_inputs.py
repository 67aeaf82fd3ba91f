"""One decode case and its inputs: a query token per sequence over a context held both contiguous
(one dense K/V buffer per sequence) and paged (K/V blocks reached through a block table)."""

from __future__ import annotations

import dataclasses
import math
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
