"""One measured figure: its value and unit, the direction that is better, and the noise it carries.

What a test records (metrics/recorder.py) and what a baseline stores (gate/baseline_file.py) are
the same record, so the gate compares like with like.
"""

from __future__ import annotations

from dataclasses import dataclass

from pagedbench.errors import BaselineError
from pagedbench.gate import tolerance as tol

DIRECTIONS = ("higher", "lower", "equal")  # equal: any change beyond tolerance is a regression


@dataclass(frozen=True)
class Metric:
    value: float
    unit: str
    direction: str
    spread: float = 0.0        # relative (stdev / mean) over the rounds of one run; 0 for exact counts
    floor: float = tol.DEFAULT
    portable: bool = False     # the same on every machine of the slug (see gate/baseline_file.py)
    run_spread: float = 0.0    # relative spread between separate runs (baselines merged from several)
    runs: int = 1              # how many runs the value and run_spread come from
    machines: int = 1          # on how many distinct machines those runs were measured (0: not recorded)
    gated: bool = True         # False: a ratio reported beside its two sides, each gated where measured

    @property
    def one_run(self) -> bool:
        """A noisy figure with no run-to-run spread (one run, no neighbour measured in more): only its
        floor stands for that noise."""
        return self.runs < 2 and self.run_spread == 0 and self.direction != "equal"

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise BaselineError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
