"""Are the tokens right? The greedy output of a configuration against a reference configuration.

The output check's requests and weights, and the run that yields the greedy ids, are
engines/output_check.py's.

Greedy decoding of the same weights is deterministic, but two configurations whose arithmetic
differs (compiled vs eager kernels, an fp8 cache) flip a near-tie sooner or later and diverge from
there. So agreement is read per request as the length of the identical prefix: wrong tokens
diverge at once, a different rounding after a while.
"""

from __future__ import annotations

from dataclasses import dataclass

from pagedbench.engines.output_check import CHECK_STEPS
from pagedbench.errors import PagedBenchError


@dataclass(frozen=True)
class Agreement:
    """Per request, how many greedy tokens matched the reference before the first difference."""

    matched: tuple[int, ...]
    steps: int

    @classmethod
    def of(cls, reference: list[tuple[int, ...]], got: list[tuple[int, ...]], steps: int = CHECK_STEPS) -> Agreement:
        if len(reference) != len(got):
            raise PagedBenchError(f"output check: {len(got)} outputs against {len(reference)} reference outputs")
        matched = []
        for ref, out in zip(reference, got):
            n = 0
            while n < min(steps, len(ref), len(out)) and ref[n] == out[n]:
                n += 1
            matched.append(n)
        return cls(tuple(matched), steps)

    @property
    def token_agreement(self) -> float:
        """Share of the compared tokens that lie before the request's first difference."""
        return sum(self.matched) / (self.steps * len(self.matched))

    def record(self, metrics, prefix: str, floor: float) -> None:
        metrics.metric(f"{prefix}token_agreement", self.token_agreement, "share", "higher", floor=floor)
        metrics.param(**{f"{prefix}identical_requests": f"{sum(m == self.steps for m in self.matched)}/{len(self.matched)}",
                         f"{prefix}first_difference_per_request": list(self.matched)})
