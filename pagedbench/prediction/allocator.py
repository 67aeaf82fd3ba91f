"""A model of vLLM v1's KV cache manager: the prediction side of the suite.

Mirrors vllm/v1/core/block_pool.py and kv_cache_manager.py closely enough that
the simulator's block counts can be asserted against vLLM's own block pool:
a fixed pool with block 0 held back as the null block, an LRU free queue whose
cached blocks stay reusable until evicted, per-sequence block tables, reference
counts, chained hashes of full blocks for prefix sharing, and refusal (None)
when the pool cannot cover a request. Copy-on-write fork is kept for parallel
sampling (vLLM v0 had it; v1 shares through the prefix cache instead).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from pagedbench.errors import PagedBenchError


@dataclass(eq=False)
class KVBlock:
    block_id: int
    ref_cnt: int = 0
    block_hash: int | None = None


class BlockPool:
    """Fixed set of blocks; free blocks wait in LRU order and keep their hash until reused."""

    def __init__(self, num_blocks: int, enable_caching: bool = True):
        if isinstance(num_blocks, bool) or not isinstance(num_blocks, int) or num_blocks < 2:
            raise PagedBenchError(f"a block pool needs at least 2 blocks (one is the null block), got {num_blocks!r}")
        self.num_blocks = num_blocks
        self.enable_caching = enable_caching
        self.blocks = [KVBlock(i) for i in range(num_blocks)]
        self.free_queue: OrderedDict[int, KVBlock] = OrderedDict((b.block_id, b) for b in self.blocks)
        # vLLM reserves one block as a placeholder for skipped positions; it is never handed out.
        _, self.null_block = self.free_queue.popitem(last=False)
        self.cached: dict[int, KVBlock] = {}

    @property
    def usable_blocks(self) -> int:
        return self.num_blocks - 1

    def num_free(self) -> int:
        return len(self.free_queue)

    def num_used(self) -> int:
        return self.usable_blocks - self.num_free()

    def get_new_blocks(self, n: int) -> list[KVBlock]:
        if n > len(self.free_queue):
            raise PagedBenchError(f"asked for {n} blocks with {len(self.free_queue)} free")
        out = []
        for _ in range(n):
            _, block = self.free_queue.popitem(last=False)
            if block.block_hash is not None:  # evict: its cached content is overwritten now
                if self.cached.get(block.block_hash) is block:
                    del self.cached[block.block_hash]
                block.block_hash = None
            block.ref_cnt = 1
            out.append(block)
        return out

    def touch(self, blocks: Sequence[KVBlock]) -> None:
        for block in blocks:
            if block.ref_cnt == 0:
                del self.free_queue[block.block_id]
            block.ref_cnt += 1

    def free_blocks(self, ordered: Sequence[KVBlock]) -> None:
        """Blocks go to the queue's tail in the given order: callers pass tail blocks first,
        so a sequence's last blocks are evicted before its (more shareable) prefix."""
        for block in ordered:
            block.ref_cnt -= 1
            if block.ref_cnt < 0:
                raise AssertionError(f"block {block.block_id} freed more often than allocated")
            if block.ref_cnt == 0:
                self.free_queue[block.block_id] = block

    def cache_block(self, block: KVBlock, block_hash: int) -> None:
        if block.block_hash is None:
            block.block_hash = block_hash
            self.cached.setdefault(block_hash, block)

    def lookup(self, block_hash: int) -> KVBlock | None:
        return self.cached.get(block_hash) if self.enable_caching else None


def block_hashes(token_ids: Sequence[int], block_size: int) -> list[int]:
    """Chained hashes of full blocks: a block's hash covers every token before it."""
    out, parent = [], None
    for start in range(0, len(token_ids) - block_size + 1, block_size):
        parent = hash((parent, tuple(token_ids[start:start + block_size])))
        out.append(parent)
    return out


@dataclass
class SeqState:
    token_ids: list[int]
    blocks: list[KVBlock] = field(default_factory=list)
    num_cached_blocks: int = 0


class KVCacheManager:
    """Block tables over a BlockPool, with vLLM v1's allocate_slots / free contract."""

    def __init__(self, num_blocks: int, block_size: int, enable_caching: bool = True):
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size <= 0:
            raise PagedBenchError(f"block size must be a positive integer, got {block_size!r}")
        self.block_size = block_size
        self.pool = BlockPool(num_blocks, enable_caching)
        self.seqs: dict[str, SeqState] = {}
        self.cow_copies: list[tuple[int, int]] = []  # (src block, dst block) copies a kernel would do
        self.prefix_queries = 0
        self.prefix_hits = 0

    # -- lookups -----------------------------------------------------------
    def get_computed_blocks(self, token_ids: Sequence[int]) -> list[KVBlock]:
        """Longest cached prefix of full blocks; the last token is always recomputed."""
        if not self.pool.enable_caching:
            return []
        hits = []
        max_blocks = (len(token_ids) - 1) // self.block_size
        for h in block_hashes(token_ids, self.block_size)[:max_blocks]:
            block = self.pool.lookup(h)
            if block is None:
                break
            hits.append(block)
        return hits

    def num_tokens(self, seq_id: str) -> int:
        return len(self.seqs[seq_id].token_ids)

    # -- allocation ----------------------------------------------------------
    def allocate_slots(self, seq_id: str, new_token_ids: Sequence[int],
                       computed_blocks: Sequence[KVBlock] = ()) -> list[KVBlock] | None:
        """Room for new_token_ids after what the sequence holds (plus cache hits for a new one).

        Returns the newly taken blocks, or None with nothing changed when the pool
        cannot cover them: the caller's signal to preempt.
        """
        seq = self.seqs.get(seq_id)
        held = len(seq.blocks) if seq else 0
        n_tokens = (len(seq.token_ids) if seq else 0) + len(new_token_ids)
        if seq is None and computed_blocks and len(computed_blocks) * self.block_size >= n_tokens:
            raise PagedBenchError("cache hits must leave at least one token to compute")
        need = -(-n_tokens // self.block_size) - held - len(computed_blocks)
        # Writing into a shared, partly filled last block (after a fork) takes one more block for its copy.
        cow = bool(seq and new_token_ids and seq.blocks and len(seq.token_ids) % self.block_size
                   and seq.blocks[-1].ref_cnt > 1)
        evictable_hits = sum(1 for b in computed_blocks if b.ref_cnt == 0)
        if need + cow > self.pool.num_free() - evictable_hits:
            return None
        if seq is None:
            seq = self.seqs[seq_id] = SeqState([])
            self.pool.touch(computed_blocks)
            seq.blocks.extend(computed_blocks)
            seq.num_cached_blocks = len(computed_blocks)
        elif cow:
            self._copy_on_write(seq)
        seq.token_ids.extend(new_token_ids)
        new = self.pool.get_new_blocks(max(need, 0))
        seq.blocks.extend(new)
        self._cache_full_blocks(seq)
        return new

    def _copy_on_write(self, seq: SeqState) -> None:
        """The last block is partly filled and shared after a fork: writing into it needs a private copy."""
        src = seq.blocks[-1]
        (dst,) = self.pool.get_new_blocks(1)
        self.pool.free_blocks([src])
        seq.blocks[-1] = dst
        self.cow_copies.append((src.block_id, dst.block_id))

    def _cache_full_blocks(self, seq: SeqState) -> None:
        if not self.pool.enable_caching:
            return
        full = len(seq.token_ids) // self.block_size
        if full <= seq.num_cached_blocks:
            return
        hashes = block_hashes(seq.token_ids[: full * self.block_size], self.block_size)
        for i in range(seq.num_cached_blocks, full):
            self.pool.cache_block(seq.blocks[i], hashes[i])
        seq.num_cached_blocks = full

    def add_sequence(self, seq_id: str, token_ids: Sequence[int]) -> list[KVBlock] | None:
        """Admit a new sequence, reusing cached prefix blocks; None when it does not fit."""
        if seq_id in self.seqs:
            raise PagedBenchError(f"sequence {seq_id!r} already holds blocks")
        hits = self.get_computed_blocks(token_ids)
        out = self.allocate_slots(seq_id, token_ids, hits)
        if out is not None:
            self.prefix_queries += len(token_ids)
            self.prefix_hits += len(hits) * self.block_size
        return out

    def fork(self, parent_id: str, child_id: str) -> None:
        """Parallel sampling: the child shares every parent block until one of them writes."""
        parent = self.seqs[parent_id]
        if child_id in self.seqs:
            raise PagedBenchError(f"sequence {child_id!r} already exists")
        self.pool.touch(parent.blocks)
        self.seqs[child_id] = SeqState(list(parent.token_ids), list(parent.blocks), parent.num_cached_blocks)

    def free(self, seq_id: str) -> None:
        seq = self.seqs.pop(seq_id)
        self.pool.free_blocks(list(reversed(seq.blocks)))

    # -- checks -----------------------------------------------------------------
    def check_invariants(self) -> None:
        """Every block is either free with ref 0 or held exactly ref_cnt times."""
        held: dict[int, int] = {}
        for seq in self.seqs.values():
            if len(seq.blocks) != -(-len(seq.token_ids) // self.block_size):
                raise AssertionError(f"{len(seq.blocks)} blocks for {len(seq.token_ids)} tokens")
            for b in seq.blocks:
                held[b.block_id] = held.get(b.block_id, 0) + 1
        for b in self.pool.blocks:
            if b is self.pool.null_block:
                if b.block_id in held or b.block_id in self.pool.free_queue:
                    raise AssertionError("null block handed out")
                continue
            if b.ref_cnt < 0:
                raise AssertionError(f"block {b.block_id} has ref_cnt {b.ref_cnt}")
            if b.ref_cnt != held.get(b.block_id, 0):
                raise AssertionError(f"block {b.block_id}: ref_cnt {b.ref_cnt}, held {held.get(b.block_id, 0)} times")
            if (b.ref_cnt == 0) != (b.block_id in self.pool.free_queue):
                raise AssertionError(f"block {b.block_id}: ref_cnt {b.ref_cnt} but free-queue membership disagrees")
