"""The device's practical memory bandwidth: a large device-to-device copy, timed by Triton's do_bench.

The decode kernels' GB/s is compared with this figure. Only this copy uses do_bench; the kernel
cases themselves are timed by CUDA-graph replay (meters/kernel_timing.py's GraphReplay).
"""

from __future__ import annotations


def do_bench(call, warmup_ms: int = 25, rep_ms: int = 50) -> tuple[float, float]:
    """(median seconds, relative spread) of one call: CUDA events, L2 flushed before each rep."""
    import triton.testing
    q20, q50, q80 = triton.testing.do_bench(call, warmup=warmup_ms, rep=rep_ms, quantiles=[0.2, 0.5, 0.8])
    return q50 / 1e3, (q80 - q20) / q50 if q50 else 0.0


def copy_bandwidth_gbps(nbytes: int = 2 << 30) -> float:
    """Practical peak: a large device-to-device copy, counting bytes read plus bytes written."""
    import torch
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    src.random_(0, 255)
    dst = torch.empty_like(src)
    seconds, _ = do_bench(lambda: dst.copy_(src), warmup_ms=50, rep_ms=200)
    torch.cuda.empty_cache()  # src/dst go when this frame returns
    return 2 * nbytes / seconds / 1e9
