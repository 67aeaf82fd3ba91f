"""The allocator model's speed: allocate, grow and free 100k tokens' worth of blocks."""

import statistics
import time

import pytest

from pagedbench.meters.device_timing import timed_rounds
from pagedbench.prediction.allocator import KVCacheManager

TOKENS_100K = 100_000


@pytest.mark.blocks
@pytest.mark.parametrize("block_size", [16, 32])
def test_allocator_speed(benchmark, block_size):
    """Allocate, grow token by token, and free 100k tokens' worth of blocks (rounds=5, warm-up 1)."""
    seqs = 100
    per_seq = TOKENS_100K // seqs

    def cycle():
        t0 = time.perf_counter()  # pure Python on the host: the host clock is the right one
        m = KVCacheManager(1 + TOKENS_100K // block_size + seqs, block_size, enable_caching=False)
        for s in range(seqs):
            m.add_sequence(s, [1])
        for _ in range(per_seq - 1):
            for s in range(seqs):
                m.allocate_slots(s, [2])
        for s in range(seqs):
            m.free(s)
        return m, time.perf_counter() - t0

    rounds = timed_rounds(benchmark, cycle, rounds=5, warmup=1)
    assert all(m.pool.num_used() == 0 for m, _ in rounds)
    median = statistics.median(t for _, t in rounds)
    ops = seqs * (per_seq + 1)
    benchmark.extra_info.update(tokens=TOKENS_100K, block_size=block_size, ops=ops, ops_per_s=ops / median,
                                blocks_per_s=(TOKENS_100K // block_size) / median)
