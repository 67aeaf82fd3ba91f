"""Is this machine fit to be measured right now? Sampled before and after every timed test.

A GPU is contaminated when another process holds it or its clocks are held down by a
thermal or hardware reason; a CPU when other processes (or the hypervisor, as steal time)
take a share of its cores while the suite is idle. A contaminated result is marked in the
run JSON and the summary and never becomes a baseline.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import psutil

from pagedbench.engines.processes import descendants

# Clock-event reasons that are normal: an idle card, application clocks, and the power cap every
# loaded Hopper card reaches (still flagged for a moment after our own previous test: seen on an
# H100 before most kernel cases: docs/hardware-notes.md). Thermal and hardware slowdowns are what contaminate.
BENIGN = {"GpuIdle", "ApplicationsClocksSetting", "SwPowerCap"}
BENIGN_UNDER_LOAD = BENIGN
# Other processes taking a third of a core while the suite idles: a busy shared machine.
CPU_BUSY_CORES = 0.35
CPU_STEAL_SHARE = 0.10
CPU_SAMPLE_SECONDS = 0.3


@dataclass
class Sample:
    other_processes: list[int] = field(default_factory=list)
    throttle_reasons: list[str] = field(default_factory=list)
    utilization_pct: float | None = None
    sm_clock_mhz: int | None = None
    other_cpu_cores: float | None = None
    steal_share: float | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in (None, [])}


def _own_pids() -> set[int]:
    """This process and its descendants (tensor-parallel workers, engine cores)."""
    return {os.getpid()} | descendants()


def gpu_sample(index: int = 0, under_load: bool = False) -> Sample | None:
    """NVML's view of GPU `index`; None without NVML."""
    try:
        import pynvml
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no NVML: nothing to report
        return None
    try:
        h = pynvml.nvmlDeviceGetHandleByIndex(index)
        mine = _own_pids()
        procs = set()
        for fn in (pynvml.nvmlDeviceGetComputeRunningProcesses, pynvml.nvmlDeviceGetGraphicsRunningProcesses):
            try:
                procs |= {p.pid for p in fn(h) if p.pid not in mine}
            except pynvml.NVMLError:
                pass
        try:
            mask = pynvml.nvmlDeviceGetCurrentClocksEventReasons(h)
        except (pynvml.NVMLError, AttributeError):
            mask = pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(h)
        names = {name.removeprefix("nvmlClocksThrottleReason").removeprefix("nvmlClocksEventReason")
                 for name in dir(pynvml)
                 if name.startswith(("nvmlClocksThrottleReason", "nvmlClocksEventReason"))
                 and not name.endswith(("None", "All", "Unknown")) and isinstance(getattr(pynvml, name), int)
                 and mask & getattr(pynvml, name)}
        benign = BENIGN_UNDER_LOAD if under_load else BENIGN
        sample = Sample(sorted(procs), sorted(names - benign))
        try:
            sample.utilization_pct = float(pynvml.nvmlDeviceGetUtilizationRates(h).gpu)
            sample.sm_clock_mhz = int(pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM))
        except pynvml.NVMLError:
            pass
        return sample
    finally:
        pynvml.nvmlShutdown()


def _machine_cpu() -> tuple[float, float, float]:
    """(busy, steal, total) CPU seconds summed over all CPUs since boot."""
    times = psutil.cpu_times()
    busy = sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))
    steal = getattr(times, "steal", 0.0)
    return busy, steal, busy + steal + times.idle + getattr(times, "iowait", 0.0)


def _own_cpu() -> float:
    """CPU seconds of this process, its reaped children and its live descendants (a served model's
    API server and engine core run beside the suite: their work is the suite's, not a neighbour's)."""
    me = psutil.Process()
    t = me.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in me.children(recursive=True):
        try:
            c = child.cpu_times()
        except psutil.NoSuchProcess:
            continue  # exited between the listing and the read
        total += c.user + c.system
    return total


def cpu_share(machine: tuple[tuple[float, float, float], tuple[float, float, float]], own: tuple[float, float],
              seconds: float) -> Sample:
    """Cores others used over `seconds` (the machine's busy time less this process tree's) and the steal share."""
    (b0, s0, t0), (b1, s1, t1) = machine
    return Sample(other_cpu_cores=max(0.0, (b1 - b0) - (own[1] - own[0])) / seconds,
                  steal_share=(s1 - s0) / max(t1 - t0, 1e-9))


def cpu_sample(seconds: float = CPU_SAMPLE_SECONDS) -> Sample | None:
    """Cores other processes used while this one slept, and the hypervisor's steal share."""
    try:
        m0, o0 = _machine_cpu(), _own_cpu()
        time.sleep(seconds)
        m1, o1 = _machine_cpu(), _own_cpu()
    except (OSError, psutil.Error, AttributeError):
        return None  # CPU times not readable on this OS: nothing to report
    return cpu_share((m0, m1), (o0, o1), seconds)


# Two machines that report the same CPU (a hypervisor may show one model everywhere) can still
# differ 2-3x per core: a fixed piece of work timed at session start tells them apart.
PROBE_RATIO = 1.25


def cpu_speed_probe(seconds: float = 0.3) -> float:
    """Single-thread fp32 GFLOP/s of a 256x256 matmul loop (best of short bursts, so a brief
    preemption does not lower it)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a = torch.randn(256, 256)
        b = torch.randn(256, 256)
        best = 0.0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            for _ in range(20):
                a @ b
            best = max(best, 20 * 2 * 256**3 / (time.perf_counter() - t0) / 1e9)
        return round(best, 1)
    finally:
        torch.set_num_threads(threads)


def speed_mismatch(baseline_probe: float | None, probe: float | None) -> str | None:
    """Why rates of this machine cannot be compared with the baseline machine's, if they cannot."""
    if not baseline_probe or not probe:
        return None
    ratio = probe / baseline_probe
    if 1 / PROBE_RATIO <= ratio <= PROBE_RATIO:
        return None
    return f"this CPU's speed probe is {probe:.0f} GFLOP/s, the baseline machine's {baseline_probe:.0f}"


def problems(sample: Sample | None) -> list[str]:
    """What in a sample makes a timed result untrustworthy, in words."""
    if sample is None:
        return []
    out = []
    if sample.other_processes:
        out.append(f"other processes on the GPU: {sample.other_processes}")
    if sample.throttle_reasons:
        out.append(f"clocks throttled: {', '.join(sample.throttle_reasons)}")
    if sample.other_cpu_cores is not None and sample.other_cpu_cores > CPU_BUSY_CORES:
        out.append(f"other processes used {sample.other_cpu_cores:.2f} cores while the suite was idle")
    if sample.steal_share is not None and sample.steal_share > CPU_STEAL_SHARE:
        out.append(f"the hypervisor stole {100 * sample.steal_share:.0f} % of CPU time")
    return out


def sample_before(is_gpu: bool) -> Sample | None:
    return gpu_sample() if is_gpu else cpu_sample()


def sample_after(is_gpu: bool) -> Sample | None:
    # After the test our own load may still hold the power cap: only other processes and
    # thermal/hardware reasons count. A CPU's look during and right after the work is the watch's
    # (meters/neighbours.py): its last interval ends when the work does.
    return gpu_sample(under_load=True) if is_gpu else None


def startup_warning(is_gpu: bool) -> str | None:
    """What is wrong with the GPU as the session starts, said once up front; each timed test
    samples again and is marked on its own. A CPU's idle window is taken per test only."""
    found = problems(gpu_sample()) if is_gpu else []
    return "measurements may be skewed: " + "; ".join(found) if found else None
