"""Energy: NVML's total energy counter (`nvmlDeviceGetTotalEnergyConsumption`, millijoules since the
driver loaded) read before and after every timed region on a GPU.

Joules per output token (throughput, serving per load, the sweep) and joules per call (kernels) are
the figures gated, lower is better, with the same noise model as the timings: the median over the
regions, their relative spread as the metric's noise, and a floor the caller gives (tolerance.ENERGY:
the noise policy's one home is gate/tolerance.py, a later stage than this one). Mean watts are
reported beside them, not gated: fewer watts also come from a device that waits more.

Where the counter is missing (a CPU machine, a GPU or driver without it: NVMLError) the figures are
recorded as not measured, with why; nothing fails on that.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

# Kernel calls take microseconds and the counter advances in steps of milliseconds: the calls are
# replayed for this long per region, over this many regions, so a step is a small part of each.
KERNEL_WINDOW_S = 0.1
KERNEL_REGIONS = 3


def _nvml():
    import pynvml
    return pynvml


class EnergyMeter:
    """with EnergyMeter() as energy: energy.around(fn) reads the counter around fn; `regions` holds
    (joules, seconds) per region. `available` is False, with `why`, where there is no counter."""

    def __init__(self, indices: tuple[int, ...] = (0,), nvml=None):
        self.indices = indices
        self._nvml = nvml
        self._handles: list = []
        self.regions: list[tuple[float, float]] = []
        self.available, self.why = False, ""

    def __enter__(self):
        try:
            self._nvml = self._nvml or _nvml()
            self._nvml.nvmlInit()
        except Exception as exc:  # noqa: BLE001 - no pynvml or no driver: a CPU machine
            self.why = f"no NVML here ({type(exc).__name__}: {exc})"
            return self
        try:
            self._handles = [self._nvml.nvmlDeviceGetHandleByIndex(i) for i in self.indices]
            self._millijoules()
            self.available = True
        except Exception as exc:  # noqa: BLE001 - NVMLError (NotSupported before Volta, no permission)
            self.why = f"NVML has no energy counter here ({type(exc).__name__}: {exc})"
            self._nvml.nvmlShutdown()
        return self

    def __exit__(self, *exc):
        if self.available:
            self._nvml.nvmlShutdown()
        return False

    def _millijoules(self) -> float:
        return float(sum(self._nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._handles))

    def around(self, fn: Callable[[], object]):
        """fn(), with the energy it took kept as one region (nothing kept without a counter)."""
        if not self.available:
            return fn()
        e0, t0 = self._millijoules(), time.perf_counter()
        out = fn()
        e1, t1 = self._millijoules(), time.perf_counter()
        self.regions.append(((e1 - e0) / 1000.0, t1 - t0))
        return out

    def _unmeasured(self, metrics, names: tuple[str, ...]) -> bool:
        why = self.why if not self.available else "no timed region was read"
        if self.available and self.regions and all(j > 0 for j, _ in self.regions):
            return False
        if self.available and self.regions:
            why = "the counter did not advance over a timed region (a region shorter than its update step)"
        for name in names:
            metrics.not_measured(name, why)
        return True

    def record(self, metrics, work: float, floor: float, per: str = "token", prefix: str = "") -> None:
        """Joules per unit of work (`work` units in each region, e.g. output tokens per round), gated lower
        is better, and mean watts, reported; or both as not measured, with why."""
        j_name, w_name = f"{prefix}energy_j_per_{per}", f"{prefix}mean_watts"
        if self._unmeasured(metrics, (j_name, w_name)):
            return
        per_work = [j / work for j, _ in self.regions]
        metrics.metric(j_name, statistics.median(per_work), f"J/{per}", "lower", spread=_spread(per_work), floor=floor)
        watts = [j / s for j, s in self.regions]
        metrics.reported(w_name, sum(j for j, _ in self.regions) / sum(s for _, s in self.regions), "W", "lower",
                         spread=_spread(watts))


def _spread(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.mean(values) if len(values) > 1 else 0.0


def kernel_energy(metrics, one_pass: Callable[[], object], calls_per_pass: int, seconds_per_call: float,
                  floor: float, meter: EnergyMeter | None = None) -> None:
    """Joules per kernel call: one_pass (calls_per_pass calls, synchronized) replayed for KERNEL_WINDOW_S
    per region, KERNEL_REGIONS regions, outside the latency's timed rounds."""
    passes = max(1, math.ceil(KERNEL_WINDOW_S / max(seconds_per_call * calls_per_pass, 1e-9)))
    with (meter or EnergyMeter()) as energy:
        if energy.available:
            for _ in range(KERNEL_REGIONS):
                energy.around(lambda: [one_pass() for _ in range(passes)])
        energy.record(metrics, passes * calls_per_pass, floor, per="call")
