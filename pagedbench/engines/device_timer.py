"""Elapsed device time of one engine call: CUDA events on a GPU, the host clock on a CPU.

An engine that times its own call (HF generate() reports the device time of the whole call) takes it
from here; the meters' rounds (meters/device_timing.py) time through pytest-benchmark instead.
"""

from __future__ import annotations

import time


class DeviceTimer:
    """Elapsed time of device work: CUDA events on a GPU, perf_counter on the CPU.

    CPU kernels run synchronously, so the host clock is the device clock there;
    on CUDA the events bracket the queued work and are read after a sync.
    """

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")
        self.seconds = 0.0

    def __enter__(self):
        if self.cuda:
            import torch
            self._start, self._end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            self._end.record()
            self._end.synchronize()
            self.seconds = self._start.elapsed_time(self._end) / 1000.0
        else:
            self.seconds = time.perf_counter() - self._t0
        return False
