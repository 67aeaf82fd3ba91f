"""KV-cache arithmetic from an HF model config.

Everything here is exact integer arithmetic on token counts and bytes: the
predictions that vLLM's block pool is measured against.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pagedbench.errors import PagedBenchError
from pagedbench.workloads.model import ModelShape, pool_blocks, positive_int

# ---- pre-allocation vs paging -------------------------------------------------

@dataclass(frozen=True)
class Allocation:
    """KV bytes a scheme reserves for a set of sequences, and how many hold tokens."""

    allocated_bytes: int
    used_bytes: int

    @property
    def wasted_bytes(self) -> int:
        return self.allocated_bytes - self.used_bytes

    @property
    def waste_pct(self) -> float:
        return 100.0 * self.wasted_bytes / self.allocated_bytes if self.allocated_bytes else 0.0


def check_lengths(lengths: Sequence[int], max_seq_len: int | None = None) -> list[int]:
    lengths = list(lengths)
    if not lengths:
        raise PagedBenchError("empty workload: no sequence lengths given")
    for n in lengths:
        positive_int("sequence length", n)
        if max_seq_len is not None and n > max_seq_len:
            raise PagedBenchError(f"sequence length {n} exceeds max_seq_len {max_seq_len}")
    return lengths


def blocks_for(num_tokens: int, block_size: int) -> int:
    positive_int("block size", block_size)
    return -(-num_tokens // block_size)


def contiguous_allocation(lengths: Sequence[int], max_seq_len: int, bytes_per_token: int) -> Allocation:
    """Every request reserves max_seq_len slots up front (HF static cache, pre-vLLM servers)."""
    positive_int("max_seq_len", max_seq_len)
    lengths = check_lengths(lengths, max_seq_len)
    return Allocation(len(lengths) * max_seq_len * bytes_per_token, sum(lengths) * bytes_per_token)


def paged_allocation(lengths: Sequence[int], block_size: int, bytes_per_token: int) -> Allocation:
    """Every request holds ceil(len / block_size) blocks: waste is the last block's empty slots."""
    lengths = check_lengths(lengths)
    blocks = sum(blocks_for(n, block_size) for n in lengths)
    return Allocation(blocks * block_size * bytes_per_token, sum(lengths) * bytes_per_token)




def max_users_contiguous(budget_bytes: int, max_seq_len: int, bytes_per_token: int) -> int:
    positive_int("KV budget (bytes)", budget_bytes)
    return budget_bytes // (positive_int("max_seq_len", max_seq_len) * bytes_per_token)


def max_users_paged(budget_bytes: int, avg_len: int, block_size: int, bytes_per_token: int) -> int:
    """Users of average length avg_len that fit when each holds only the blocks it fills."""
    return pool_blocks(budget_bytes, block_size, bytes_per_token) // blocks_for(positive_int("average length", avg_len), block_size)


def max_users_tp(per_gpu_budget_bytes: int, avg_len: int, block_size: int, shape: ModelShape, tp: int) -> int:
    """Paged users at tensor-parallel degree tp: each GPU holds its share of the KV heads for every
    user, so the per-GPU budget and per-GPU bytes per token decide (the pool is the same on every rank)."""
    return max_users_paged(per_gpu_budget_bytes, avg_len, block_size, shape.kv_bytes_per_token(tp))


@dataclass(frozen=True)
class PrefixSharing:
    """KV held by n users that share one prompt prefix: tokens unshared and ideally shared, blocks
    unshared and shared through vLLM's prefix cache (full blocks only)."""

    tokens_unshared: int     # every user stores the whole prompt
    tokens_ideal: int        # the prefix stored once, token-exact
    blocks_unshared: int
    blocks_shared: int

    @property
    def ideal_savings_pct(self) -> float:
        return 100.0 * (1 - self.tokens_ideal / self.tokens_unshared)

    @property
    def block_savings_pct(self) -> float:
        return 100.0 * (1 - self.blocks_shared / self.blocks_unshared)


def cached_prefix_blocks(shared_len: int, unique_len: int, block_size: int) -> int:
    """Blocks of a shared prefix a later request finds in vLLM's prefix cache: full blocks only, and
    never the last prompt token (a hit covers at most prompt length - 1 tokens)."""
    return min(shared_len, shared_len + unique_len - 1) // block_size


def prefix_hit_tokens(readers: int, shared_len: int, unique_len: int, block_size: int) -> int:
    """Prompt tokens `readers` requests take from the prefix cache once the shared prefix is cached."""
    return readers * cached_prefix_blocks(shared_len, unique_len, block_size) * block_size


def prefix_sharing(n_users: int, shared_len: int, unique_len: int, block_size: int) -> PrefixSharing:
    positive_int("number of users", n_users)
    positive_int("shared prefix length", shared_len)
    if isinstance(unique_len, bool) or not isinstance(unique_len, int) or unique_len < 0:
        raise PagedBenchError(f"unique length must be a non-negative integer, got {unique_len!r}")
    total = shared_len + unique_len
    shared_blocks = cached_prefix_blocks(shared_len, unique_len, block_size)
    per_user_blocks = blocks_for(total, block_size)
    tail_blocks = blocks_for(total - shared_blocks * block_size, block_size)
    blocks_shared = shared_blocks + n_users * tail_blocks
    return PrefixSharing(
        tokens_unshared=n_users * total,
        tokens_ideal=shared_len + n_users * unique_len,
        blocks_unshared=n_users * per_user_blocks,
        blocks_shared=blocks_shared,
    )


def fragmentation(lengths: Iterable[int], block_size: int) -> tuple[int, float]:
    """Empty slots in the last block of each sequence: (tokens, % of allocated)."""
    lengths = check_lengths(list(lengths))
    allocated = sum(blocks_for(n, block_size) for n in lengths) * block_size
    wasted = allocated - sum(lengths)
    return wasted, 100.0 * wasted / allocated
