"""The machine watched over a whole timed region, not only sampled before it.

A neighbour that starts after the idle sample (a CI job beside ours, a busy loop) slows a
CPU run by several times; sampled only before the region, it went unmarked and its rates
became the baseline. A `Watch` runs a thread from the start of a test's timed work to its
end and, every `INTERVAL_S`:

- on a CPU, the CPU time that processes outside this process tree used (psutil), per
  interval, and the hypervisor's steal share;
- on a GPU, NVML's view: other processes on the GPU and thermal or hardware clock events.

The suite's own processes (servers, engine cores, workers: this process's descendants) are
ours, whatever they use. Kernel threads are left out: their time is mostly interrupts and
I/O done for whichever process runs, ours included.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

from pagedbench.meters import machine_health as health

INTERVAL_S = 1.0
# A neighbour counts once it holds CPU_BUSY_CORES for WINDOW intervals in a row (its mean over
# them): a one-second burst of some daemon is not a neighbour, a job running beside ours is.
WINDOW = 3
KTHREADD = 2  # Linux: the parent of every kernel thread


def own_pids() -> set[int]:
    """This process and its live descendants (servers, engine cores, tensor-parallel workers)."""
    me = psutil.Process()
    out = {me.pid}
    try:
        out |= {p.pid for p in me.children(recursive=True)}
    except psutil.Error:
        pass
    return out


def _cpu_seconds(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


@dataclass
class CpuWindow:
    """Per interval, the cores used by processes outside this tree; the heaviest of them."""

    intervals: list[float] = field(default_factory=list)
    steal: list[float] = field(default_factory=list)
    offenders: dict[int, tuple[str, float]] = field(default_factory=dict)  # pid -> (name, CPU seconds seen)

    def peak(self, window: int = WINDOW) -> float:
        """The highest mean over `window` consecutive intervals (over all of them when fewer)."""
        xs = self.intervals
        if not xs:
            return 0.0
        w = min(window, len(xs))
        return max(sum(xs[i:i + w]) / w for i in range(len(xs) - w + 1))


class CpuProbe:
    """CPU time of the processes outside this tree between two calls of `step`."""

    def __init__(self, own: Callable[[], set[int]] = own_pids):
        self.own = own
        self.seen: dict[int, tuple[float, float]] = {}  # pid -> (create_time, cpu seconds at last look)
        self.cpu = health._machine_cpu()
        self.t = time.monotonic()
        self.wall = time.time()
        self.window = CpuWindow()
        self._look(first=True)

    def _look(self, first: bool = False) -> dict[int, float]:
        mine = self.own()
        used: dict[int, float] = {}
        now: dict[int, tuple[float, float]] = {}
        for p in psutil.process_iter(["ppid", "name", "create_time"]):
            try:
                pid, info = p.pid, p.info
                if pid in mine or pid == KTHREADD or info["ppid"] == KTHREADD or info["create_time"] is None:
                    continue
                secs = _cpu_seconds(p)
            except (psutil.Error, TypeError):
                continue  # exited or not ours to read
            now[pid] = (info["create_time"], secs)
            prior = self.seen.get(pid)
            if first:
                continue
            if prior is not None and prior[0] == info["create_time"]:
                delta = secs - prior[1]
            elif info["create_time"] >= self.wall - 0.05:
                delta = secs  # started since the last look: all its CPU time is new
            else:
                delta = 0.0  # an old process first seen now (a PID the last listing missed)
            if delta > 0:
                used[pid] = delta
                name, total = self.window.offenders.get(pid, (info["name"] or "?", 0.0))
                self.window.offenders[pid] = (name, total + delta)
        self.seen, self.wall = now, time.time()
        return used

    def step(self) -> float:
        """Cores used by others since the last step."""
        used = self._look()
        t, cpu = time.monotonic(), health._machine_cpu()
        dt = max(t - self.t, 1e-3)
        total = cpu[2] - self.cpu[2]
        steal = (cpu[1] - self.cpu[1]) / total if total > 0 else 0.0
        self.t, self.cpu = t, cpu
        cores = sum(used.values()) / dt
        self.window.intervals.append(cores)
        self.window.steal.append(max(0.0, steal))
        return cores


def gpu_problems(samples: list[health.Sample]) -> tuple[list[int], list[str], list[int]]:
    """Over NVML samples: foreign PIDs seen, clock events seen, SM clocks read."""
    pids = sorted({p for s in samples for p in s.other_processes})
    reasons = sorted({r for s in samples for r in s.throttle_reasons})
    clocks = [s.sm_clock_mhz for s in samples if s.sm_clock_mhz is not None]
    return pids, reasons, clocks


class Watch:
    """A sampler thread over one timed region: `start()`, then `stop()` -> (health dict, problems)."""

    def __init__(self, is_gpu: bool, interval_s: float = INTERVAL_S, gpu_index: int = 0,
                 gpu_sampler: Callable[[], health.Sample | None] | None = None):
        self.is_gpu = is_gpu
        self.interval_s = interval_s
        self.gpu_sampler = gpu_sampler or (lambda: health.gpu_sample(gpu_index, under_load=True))
        self.cpu: CpuProbe | None = None
        self.gpu: list[health.Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="pagedbench watch")
        self.t0 = 0.0

    def start(self) -> Watch:
        self.t0 = time.monotonic()
        if not self.is_gpu:
            self.cpu = CpuProbe()
        self._thread.start()
        return self

    def _once(self) -> None:
        try:
            if self.cpu is not None:
                self.cpu.step()
            else:
                sample = self.gpu_sampler()
                if sample is not None:
                    self.gpu.append(sample)
        except Exception:  # noqa: BLE001 - a failed look is a missing sample, never a failed test
            pass

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._once()

    def stop(self) -> tuple[dict, list[str]]:
        """End the region: one last look (what happened since the last interval), then the verdict."""
        if self._stop.is_set():
            return {}, []
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._once()
        seconds = time.monotonic() - self.t0
        if self.cpu is not None:
            return self._cpu_verdict(seconds)
        return self._gpu_verdict(seconds)

    def _cpu_verdict(self, seconds: float) -> tuple[dict, list[str]]:
        w = self.cpu.window
        peak = w.peak()
        steal = max(w.steal, default=0.0)
        top = sorted(w.offenders.items(), key=lambda kv: -kv[1][1])[:3]
        out = {"during": True, "seconds": round(seconds, 1), "other_cpu_cores_peak": round(peak, 2),
               "other_cpu_cores_mean": round(sum(w.intervals) / len(w.intervals), 2) if w.intervals else 0.0,
               "steal_share_peak": round(steal, 3),
               "neighbours": [{"pid": pid, "name": name, "cpu_s": round(s, 1)} for pid, (name, s) in top]}
        problems = []
        if peak > health.CPU_BUSY_CORES:
            who = ", ".join(f"{name} (pid {pid}, {s:.1f} CPU s)" for pid, (name, s) in top)
            problems.append(f"other processes used {peak:.2f} cores during the timed work ({who})")
        if steal > health.CPU_STEAL_SHARE:
            problems.append(f"the hypervisor stole {100 * steal:.0f} % of CPU time during the timed work")
        return out, problems

    def _gpu_verdict(self, seconds: float) -> tuple[dict, list[str]]:
        pids, reasons, clocks = gpu_problems(self.gpu)
        out = {"during": True, "seconds": round(seconds, 1), "samples": len(self.gpu), "other_processes": pids,
               "throttle_reasons": reasons}
        if clocks:
            out.update(sm_clock_mhz_min=min(clocks), sm_clock_mhz_max=max(clocks))
        problems = []
        if pids:
            problems.append(f"other processes on the GPU during the timed work: {pids}")
        if reasons:
            problems.append(f"clocks throttled during the timed work: {', '.join(reasons)}")
        return out, problems
