"""Figures one test hands to a later test of the same pytest session: the suite's one channel for that.

A few figures need another test's measurement: vLLM's speed-up over HF generate() (test_vllm_throughput
divides by test_hf_generate's tok/s), a max-num-seqs point's gain over the point before, a paged
kernel's overhead over contiguous attention at its batch and context, the default engine's rounds
that test_compile_modes measured and the fp8 KV cache case compares with. The test that measures `put`s
its figure under its own function's name and a key; the test that derives `get`s it. Under `-k`, or
with the chunks run as separate sessions, the measuring test may not have run: the deriving test then
records why its figure is missing (Recorder.not_measured: the run JSON's params, the gate's summary)
instead of dropping it, and the report still divides the two tests' figures from the run files where
it can (report.results.speedups_vs_hf). pytest's collection order (file order, then targets.run_order)
puts the measuring tests first.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field


@dataclass
class SessionStore:
    figures: dict[tuple[str, tuple], object] = field(default_factory=dict)

    def put(self, test: str, key: tuple, value) -> None:
        """Record `test`'s figure for `key` (a re-measurement replaces it)."""
        self.figures[(test, key)] = value

    def get(self, test: str, key: tuple):
        """`test`'s figure for `key`; None when that case has not run in this session."""
        return self.figures.get((test, key))

    def under(self, test: str, *prefix: Hashable) -> dict:
        """`test`'s figures whose key is prefix plus one more part, by that part (e.g. a sweep's points)."""
        n = len(prefix)
        return {key[n]: value for (name, key), value in self.figures.items()
                if name == test and len(key) == n + 1 and key[:n] == prefix}
