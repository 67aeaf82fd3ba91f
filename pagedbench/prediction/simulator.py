"""Continuous batching over the allocator model: what vLLM's block pool should show.

The step loop follows vLLM v1's scheduler: running requests first (each gets its
next tokens, preempting the newest running request when the pool is short),
then waiting requests in FCFS order while the token budget, max_num_seqs and the
pool allow, with chunked prefill. State is sampled after every step, as the
meter samples vLLM's pool, into the same trace (pagedbench.trace).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from pagedbench.errors import PagedBenchError
from pagedbench.prediction.allocator import KVCacheManager
from pagedbench.trace import RunStats, StepSample
from pagedbench.workloads.requests import Workload


@dataclass(frozen=True)
class SchedulerLimits:
    num_blocks: int            # pool size including the null block, like vLLM's num_gpu_blocks
    block_size: int
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 65536
    enable_caching: bool = False


@dataclass
class _Req:
    rid: str
    token_ids: list[int]
    prompt_len: int
    max_tokens: int
    num_computed: int = 0
    num_output: int = 0


def simulate(workload: Workload, limits: SchedulerLimits, max_steps: int = 1_000_000) -> RunStats:
    if limits.max_num_seqs < 1 or limits.max_num_batched_tokens < 1:
        raise PagedBenchError("max_num_seqs and max_num_batched_tokens must be positive")
    kv = KVCacheManager(limits.num_blocks, limits.block_size, limits.enable_caching)
    biggest = max(workload.total_lens)
    if -(-biggest // limits.block_size) > kv.pool.usable_blocks:
        raise PagedBenchError(f"a {biggest}-token request needs more than the pool's {kv.pool.usable_blocks} blocks")
    waiting = deque(_Req(str(i), list(r.prompt_token_ids), r.prompt_len, r.output_len)
                    for i, r in enumerate(workload.requests))
    running: list[_Req] = []
    stats = RunStats(limits.block_size)
    preemptions = 0
    # Output token ids only need to be distinct from prompts; their values never matter.
    next_out = iter(range(10**9, 2 * 10**9))

    def preempt(req: _Req) -> None:
        nonlocal preemptions
        kv.free(req.rid)
        req.num_computed = 0
        waiting.appendleft(req)
        preemptions += 1

    for _ in range(max_steps):
        if not waiting and not running:
            break
        budget = limits.max_num_batched_tokens
        scheduled: list[tuple[_Req, int]] = []
        preempted_now = False
        i = 0
        while i < len(running) and budget > 0:
            req = running[i]
            n_new = min(len(req.token_ids) - req.num_computed, budget)
            while True:
                held = kv.num_tokens(req.rid)
                new_ids = req.token_ids[held:req.num_computed + n_new]
                if kv.allocate_slots(req.rid, new_ids) is not None:
                    break
                victim = running.pop()
                preempt(victim)
                preempted_now = True
                if victim is req:
                    break
            if req not in running:
                break
            scheduled.append((req, n_new))
            budget -= n_new
            i += 1
        if not preempted_now:
            while waiting and budget > 0 and len(running) < limits.max_num_seqs:
                req = waiting[0]
                hits = kv.get_computed_blocks(req.token_ids)
                computed = len(hits) * limits.block_size
                n_new = min(len(req.token_ids) - computed, budget)
                ids = req.token_ids[: computed + n_new]
                if kv.add_sequence(req.rid, ids) is None:
                    break
                waiting.popleft()
                req.num_computed = computed
                running.append(req)
                scheduled.append((req, n_new))
                budget -= n_new
        if not scheduled:
            raise PagedBenchError("simulator made no progress: a request cannot fit the pool")
        for req, n_new in scheduled:
            req.num_computed += n_new
        finished = []
        for req, _ in scheduled:
            if req.num_computed >= len(req.token_ids):  # prompt (or resumed prefix) done: sample
                req.num_output += 1
                if req.num_output >= req.max_tokens:
                    finished.append(req)
                else:
                    req.token_ids.append(next(next_out))
        for req in finished:
            running.remove(req)
            kv.free(req.rid)
        stats.steps.append(StepSample(kv.pool.num_used(), len(running),
                                      sum(r.num_computed for r in running), preemptions))
    else:
        raise PagedBenchError(f"simulation did not finish in {max_steps} steps")
    stats.prefix_queries, stats.prefix_hits = kv.prefix_queries, kv.prefix_hits
    return stats
