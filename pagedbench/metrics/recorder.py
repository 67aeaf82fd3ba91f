"""The metrics stage: what one test measured, handed to the gate and the run JSON."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace

from pagedbench.errors import PagedBenchError
from pagedbench.gate import tolerance as tol
from pagedbench.metrics.metric import Metric


@dataclass
class Recorder:
    """Metrics for the gate, params and series for the report, health samples for trust."""

    test_id: str
    slug: str
    benchmark: object | None = None
    params: dict = field(default_factory=dict)
    metrics: dict[str, Metric] = field(default_factory=dict)
    series: dict[str, list] = field(default_factory=dict)
    unstable: dict[str, tuple[float, float]] = field(default_factory=dict)  # metric -> (low mode, high mode)
    health: list[dict] = field(default_factory=list)                      # samples taken around the timing
    problems: list[str] = field(default_factory=list)                     # what made the machine unfit
    attempt: int = 0                                                      # 0: first measurement; n: n-th re-measurement

    def metric(self, name: str, value: float, unit: str, direction: str, spread: float = 0.0,
               floor: float = tol.DEFAULT, portable: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise PagedBenchError(f"{self.test_id}: metric {name} is {value!r}, not a finite number")
        self.metrics[name] = Metric(float(value), unit, direction, float(spread), float(floor), portable)
        if self.benchmark is not None:
            self.benchmark.extra_info[name] = value
        return value

    def exact(self, name: str, value: int, unit: str) -> int:
        """A count that must not move at all between runs or machines (blocks, tokens)."""
        self.metric(name, value, unit, "equal", 0.0, tol.EXACT, portable=True)
        return value

    def derived(self, name: str, value: float, unit: str, direction: str) -> float:
        """A figure computed from exact counts (waste %, hit rate): the same on every machine."""
        return self.metric(name, value, unit, direction, 0.0, tol.EXACT, portable=True)

    def rate(self, name: str, work: float, seconds: list[float], unit: str, floor: float = tol.DEFAULT) -> float:
        """work / median(seconds), with the rounds' relative spread as the metric's noise."""
        if not seconds:
            raise PagedBenchError(f"{self.test_id}: no timed rounds for {name}")
        med = statistics.median(seconds)
        spread = statistics.stdev(seconds) / statistics.mean(seconds) if len(seconds) > 1 else 0.0
        return self.metric(name, work / med, unit, "higher", spread, floor)

    def mark_unstable(self, name: str, low: float, high: float) -> None:
        """The rounds of this metric split into two clusters: reported with both, never gated."""
        self.unstable[name] = (low, high)

    def param(self, **kw) -> None:
        self.params.update(kw)
        if self.benchmark is not None:
            self.benchmark.extra_info.update({f"param.{k}": v for k, v in kw.items()})

    def ratio(self, name: str, value: float, unit: str, direction: str, sides: str, spread: float = 0.0,
              floor: float = tol.DEFAULT) -> float:
        """A ratio of two figures that are each gated where they are measured (`sides` names them):
        recorded and reported, never gated itself, so a reference that moved is not blamed on the side
        under test (nor a regression of one side counted twice)."""
        self.metric(name, value, unit, direction, spread, floor)
        self.metrics[name] = replace(self.metrics[name], gated=False)
        self.params.setdefault("ratio_sides", {})[name] = sides
        return value

    def reported(self, name: str, value: float, unit: str, direction: str, spread: float = 0.0,
                 floor: float = tol.DEFAULT) -> float:
        """A figure recorded and reported, never gated: mean watts, which drop as much when the device
        waits more as when it works more efficiently (joules per token are gated instead)."""
        self.metric(name, value, unit, direction, spread, floor)
        self.metrics[name] = replace(self.metrics[name], gated=False)
        return value

    def started(self, entry: dict) -> None:
        """An engine or server this test started (metrics.settings.describe): the settings its figures
        were measured with, which the gate checks against the baseline's."""
        seen = self.params.setdefault("settings", [])
        if entry not in seen:
            seen.append(entry)

    def not_measured(self, name: str, why: str) -> None:
        """A figure this test derives but could not this time (the other side did not run in this
        session): said in the run JSON and the summary, where a silent gap would look like no change."""
        self.params.setdefault("not_measured", {})[name] = why
        if self.benchmark is not None:
            self.benchmark.extra_info[f"not_measured.{name}"] = why

    def clear_measurements(self) -> None:
        """Before a re-measurement: the metrics of the next measurement replace these."""
        self.attempt += 1
        self.metrics.clear()
        self.series.clear()
        self.unstable.clear()
