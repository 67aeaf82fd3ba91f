"""Meters: timed rounds through pytest-benchmark and a background NVML memory sampler."""

from __future__ import annotations

import threading
import time

from pagedbench.workloads.model import GIB


class NvmlSampler:
    """Samples device memory in use at `hz` in a thread: the memory timeline of a run.

    NVML sees every allocation on the device (vLLM's pool, caching allocators,
    CUDA context), which torch.cuda.max_memory_allocated alone does not.
    """

    def __init__(self, index: int = 0, hz: float = 20.0):
        self.index, self.period = index, 1.0 / hz
        self.samples: list[tuple[float, float]] = []  # (seconds since start, GiB used)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.available = False

    def __enter__(self):
        try:
            import pynvml
            pynvml.nvmlInit()
            self._nvml, self._h = pynvml, pynvml.nvmlDeviceGetHandleByIndex(self.index)
            self.available = True
        except Exception:  # noqa: BLE001 - no NVML (CPU machine): an empty timeline, said in `available`
            return self
        self._t0 = time.perf_counter()
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        used = self._nvml.nvmlDeviceGetMemoryInfo(self._h).used
        self.samples.append((time.perf_counter() - self._t0, used / GIB))

    def _loop(self):
        while not self._stop.wait(self.period):
            self._sample()

    def __exit__(self, *exc):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._sample()
            self._nvml.nvmlShutdown()
        return False

    @property
    def peak_gib(self) -> float:
        return max((v for _, v in self.samples), default=0.0)


def gpu_memory_used_gib(index: int = 0) -> float | None:
    """Device memory in use now per NVML, None without a GPU."""
    try:
        import pynvml
        pynvml.nvmlInit()
        try:
            return pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(index)).used / GIB
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001
        return None


def timed_rounds(benchmark, fn, rounds: int, warmup: int = 1, energy=None) -> list:
    """Warm up outside the timing, then `rounds` timed rounds through pytest-benchmark (pedantic).

    Returns what fn returned in each timed round, so tests can take device-side
    times from it. With --benchmark-disable pytest-benchmark runs one round.
    `energy` (meters.energy.EnergyMeter): its counter is read around each timed round, not the warm-up.
    """
    for _ in range(warmup):
        fn()
    results = []
    timed = fn if energy is None else (lambda: energy.around(fn))
    benchmark.pedantic(lambda: results.append(timed()), rounds=rounds, iterations=1, warmup_rounds=0)
    return results


def drop_unmeasured(bench) -> None:
    """Mark a benchmark that recorded no round as errored, so pytest-benchmark leaves it out of its
    save and its table. A pytest.fail/skip inside the timed call (a start_engine that could not
    start) is a BaseException, which pedantic does not count as an error: its empty stats would
    crash pytest-benchmark at session end, taking the run file and the failure summary with it."""
    stats = getattr(getattr(bench, "stats", None), "stats", None)
    if stats is not None and not stats.data:
        bench.has_error = True
