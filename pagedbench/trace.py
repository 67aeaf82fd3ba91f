"""A run's block-pool trace: the interface between the engine and the simulator.

Both sides of the suite write the same record, one sample after every scheduler
step: `engines.vllm_offline.VLLMEngine.run_stepped` reads it off vLLM's own block pool
(measured), `prediction.simulator.simulate` off the allocator model (predicted). Tests
compare the two field by field, so neither side imports the other; this module
is all they share (a shared module beside `errors`: the prediction track imports
nothing from the measuring side), as vLLM's `KVCacheBlocks` is the one type its KV cache
manager and scheduler exchange.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StepSample:
    blocks_used: int
    running: int
    tokens_held: int
    preemptions: int  # cumulative


@dataclass
class RunStats:
    """Per-step samples of a run: what the sim predicts and what the vLLM meter records."""

    block_size: int
    steps: list[StepSample] = field(default_factory=list)
    prefix_queries: int = 0
    prefix_hits: int = 0

    @property
    def peak_step(self) -> StepSample:
        return max(self.steps, key=lambda s: (s.blocks_used, s.tokens_held))

    @property
    def peak_blocks(self) -> int:
        return self.peak_step.blocks_used

    @property
    def peak_running(self) -> int:
        return max(s.running for s in self.steps)

    @property
    def preemptions(self) -> int:
        return self.steps[-1].preemptions if self.steps else 0

    @property
    def fragmentation_tokens(self) -> int:
        """Empty slots inside allocated blocks at the peak."""
        peak = self.peak_step
        return peak.blocks_used * self.block_size - peak.tokens_held

    @property
    def fragmentation_pct(self) -> float:
        peak = self.peak_step
        return 100.0 * self.fragmentation_tokens / (peak.blocks_used * self.block_size) if peak.blocks_used else 0.0

    @property
    def hit_rate(self) -> float:
        return self.prefix_hits / self.prefix_queries if self.prefix_queries else 0.0
