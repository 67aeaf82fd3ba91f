"""The allocator model: invariants under random operation sequences, CoW, refusal, speed."""


from hypothesis import given, settings
from hypothesis import strategies as st

from pagedbench.prediction.allocator import KVCacheManager
from pagedbench.prediction.simulator import SchedulerLimits, simulate
from pagedbench.workloads import requests as workloads

# Token ids from a tiny alphabet so random prompts share prefixes often.
tokens = st.lists(st.integers(0, 3), min_size=1, max_size=40)
ops = st.lists(st.tuples(st.sampled_from(["add", "append", "fork", "free"]), st.integers(0, 7), tokens),
               max_size=60)


@settings(max_examples=300, deadline=None)
@given(ops=ops, block_size=st.sampled_from([1, 2, 4, 16]), num_blocks=st.integers(2, 48), caching=st.booleans())
def test_invariants_hold_and_nothing_leaks(ops, block_size, num_blocks, caching):
    m = KVCacheManager(num_blocks, block_size, caching)
    n = 0
    for op, pick, toks in ops:
        live = sorted(m.seqs)
        if op == "add":
            m.add_sequence(f"s{n}", toks)
            n += 1
        elif live and op == "append":
            before = [b.block_id for b in m.seqs[live[pick % len(live)]].blocks]
            if m.allocate_slots(live[pick % len(live)], toks[:3]) is None:  # refused: nothing may change
                assert [b.block_id for b in m.seqs[live[pick % len(live)]].blocks] == before
        elif live and op == "fork":
            m.fork(live[pick % len(live)], f"s{n}")
            n += 1
        elif live and op == "free":
            m.free(live[pick % len(live)])
        m.check_invariants()
    for sid in list(m.seqs):
        m.free(sid)
        m.check_invariants()
    assert m.pool.num_used() == 0
    assert all(b.ref_cnt == 0 for b in m.pool.blocks)


def test_shared_blocks_freed_by_last_user_only():
    m = KVCacheManager(16, 4)
    m.add_sequence("a", list(range(10)))            # 3 blocks, the last one partly filled
    m.fork("a", "b")
    shared = [b.block_id for b in m.seqs["a"].blocks]
    m.free("a")
    assert not set(shared) & set(m.pool.free_queue), "blocks still used by b went back to the pool"
    m.free("b")
    assert set(shared) <= set(m.pool.free_queue)


def test_copy_on_write_only_on_write():
    m = KVCacheManager(16, 4)
    m.add_sequence("a", list(range(10)))            # blocks: [0..3] [4..7] [8, 9, _, _]
    m.fork("a", "b")
    assert m.cow_copies == []
    m.allocate_slots("b", [99])                      # b writes into the shared partial block
    assert len(m.cow_copies) == 1
    assert m.seqs["a"].blocks[:2] == m.seqs["b"].blocks[:2]      # full blocks stay shared
    assert m.seqs["a"].blocks[2] is not m.seqs["b"].blocks[2]
    m.allocate_slots("a", [98])                      # a's last block is its own again: no copy
    assert len(m.cow_copies) == 1
    m.check_invariants()


def test_refusal_when_pool_is_empty():
    m = KVCacheManager(5, 4)                          # 4 usable blocks (block 0 is the null block)
    assert m.add_sequence("a", list(range(12))) is not None
    assert m.add_sequence("b", list(range(100, 108))) is None   # needs 2, 1 free
    assert "b" not in m.seqs
    m.check_invariants()


def test_prefix_hits_are_full_blocks_only():
    m = KVCacheManager(64, 16)
    system = list(range(100, 150))                   # 50 tokens: 3 full blocks
    m.add_sequence("a", system + [1, 2, 3])
    m.add_sequence("b", system + [4, 5, 6])
    assert m.prefix_hits == 3 * 16
    assert m.seqs["a"].blocks[:3] == m.seqs["b"].blocks[:3]


def test_simulator_matches_block_arithmetic_when_all_fit():
    wl = workloads.seed_mix(vocab_size=4096)
    for bs in (8, 16, 32):
        run = simulate(wl, SchedulerLimits(num_blocks=1 + 65536 // bs, block_size=bs))
        assert run.peak_running == 100 and run.preemptions == 0
        assert run.peak_blocks == sum(-(-n // bs) for n in wl.prompt_lens)


def test_simulator_preempts_under_a_small_pool():
    wl = workloads.long_tail(64, vocab_size=4096, output_range=(64, 128))
    run = simulate(wl, SchedulerLimits(num_blocks=200, block_size=16))
    assert run.preemptions > 0
    assert max(s.blocks_used for s in run.steps) <= 199


def test_copy_on_write_needs_a_free_block_or_refuses():
    # Found by hypothesis: a fork fills the pool, then a write into the shared partial block
    # must be refused (preemption signal), not fail half-way.
    m = KVCacheManager(2, 2, enable_caching=False)   # one usable block
    m.add_sequence("a", [0])
    m.fork("a", "b")
    assert m.allocate_slots("b", [1]) is None
    assert m.cow_copies == []
    m.check_invariants()
