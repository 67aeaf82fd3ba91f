"""The NVML energy meter with a fake pynvml: joules per token and mean watts from the counter read
around each timed region (and not the warm-up), and 'not measured' with why where there is no counter."""

import pytest

from pagedbench.gate import tolerance as tol
from pagedbench.meters import energy as energy_mod
from pagedbench.meters.device_timing import timed_rounds
from pagedbench.meters.energy import EnergyMeter, kernel_energy
from pagedbench.metrics.recorder import Recorder


class NVMLError(Exception):
    pass


class FakeNvml:
    """A counter in millijoules that work advances: `burn(mj)` is what the device spends."""

    def __init__(self, supported=True, init_fails=False):
        self.mj, self.supported, self.init_fails = 5_000_000.0, supported, init_fails
        self.inits = self.shutdowns = 0

    def nvmlInit(self):
        if self.init_fails:
            raise NVMLError("Driver Not Loaded")
        self.inits += 1

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if not self.supported:
            raise NVMLError("Not Supported")
        return self.mj

    def burn(self, mj):
        self.mj += mj


class Bench:
    """pytest-benchmark's pedantic, as timed_rounds calls it."""

    def __init__(self):
        self.extra_info = {}

    def pedantic(self, fn, rounds, iterations, warmup_rounds):
        for _ in range(rounds):
            fn()


def test_joules_per_token_from_the_timed_rounds_only():
    nvml, rec = FakeNvml(), Recorder("t[h200]", "h200")
    spent = iter([99_000.0, 40_000.0, 42_000.0, 38_000.0])  # the warm-up's 99 J must not count

    with EnergyMeter(nvml=nvml) as meter:
        timed_rounds(Bench(), lambda: nvml.burn(next(spent)), rounds=3, energy=meter)
    meter.record(rec, work=1000, floor=tol.ENERGY)
    m = rec.metrics["energy_j_per_token"]
    assert (m.value, m.unit, m.direction, m.floor) == (pytest.approx(0.040), "J/token", "lower", tol.ENERGY)
    assert m.spread == pytest.approx(0.05, abs=1e-9)  # stdev/mean of 40, 42, 38
    assert m.gated
    watts = rec.metrics["mean_watts"]
    assert watts.value > 0 and watts.unit == "W" and not watts.gated  # reported beside, not gated
    assert nvml.inits == nvml.shutdowns == 1


def test_serving_prefix_and_the_counter_summed_over_devices():
    nvml, rec = FakeNvml(), Recorder("t[h200x2]", "h200x2")
    with EnergyMeter(indices=(0, 1), nvml=nvml) as meter:
        meter.around(lambda: nvml.burn(3_000.0))  # both devices read the same counter here: 2 x 3 J
    meter.record(rec, work=100, floor=tol.ENERGY, prefix="rate_4.")
    assert rec.metrics["rate_4.energy_j_per_token"].value == pytest.approx(0.06)
    assert "rate_4.mean_watts" in rec.metrics


@pytest.mark.parametrize("nvml, why", [(FakeNvml(init_fails=True), "no NVML here"),
                                       (FakeNvml(supported=False), "no energy counter"),
                                       (None, "no NVML here")])
def test_no_counter_is_not_measured_and_fails_nothing(nvml, why, monkeypatch):
    if nvml is None:  # a CPU machine without pynvml at all
        def missing():
            raise ImportError("No module named 'pynvml'")
        monkeypatch.setattr(energy_mod, "_nvml", missing)
    rec = Recorder("t[cpu]", "cpu")
    with EnergyMeter(nvml=nvml) as meter:
        assert meter.around(lambda: 7) == 7  # the timed work still runs
    meter.record(rec, work=10, floor=tol.ENERGY)
    assert not meter.available and not rec.metrics
    assert set(rec.params["not_measured"]) == {"energy_j_per_token", "mean_watts"}
    assert why in rec.params["not_measured"]["energy_j_per_token"]


def test_a_counter_that_did_not_advance_is_not_a_zero():
    nvml, rec = FakeNvml(), Recorder("t[h200]", "h200")
    with EnergyMeter(nvml=nvml) as meter:
        meter.around(lambda: None)
    meter.record(rec, work=10, floor=tol.ENERGY)
    assert not rec.metrics and "did not advance" in rec.params["not_measured"]["energy_j_per_token"]


def test_kernel_joules_per_call():
    nvml, rec = FakeNvml(), Recorder("k[h200]", "h200")
    passes = []

    def one_pass():  # 8 calls of 10 us, 2 mJ a pass
        passes.append(1)
        nvml.burn(2.0)
    kernel_energy(rec, one_pass, calls_per_pass=8, seconds_per_call=10e-6, floor=0.1,
                  meter=EnergyMeter(nvml=nvml))
    per_region = len(passes) // energy_mod.KERNEL_REGIONS
    assert per_region * 8 * 10e-6 >= energy_mod.KERNEL_WINDOW_S  # each region long enough for the counter
    m = rec.metrics["energy_j_per_call"]
    assert m.value == pytest.approx(2e-3 / 8) and m.unit == "J/call" and m.floor == 0.1
