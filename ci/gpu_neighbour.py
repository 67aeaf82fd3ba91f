"""Another process on the GPU at a given duty cycle: bf16 matmuls for duty x period, then sleep.

    python ci/gpu_neighbour.py --duty 0.05 --seconds 600 &

Used to prove the suite marks a shared GPU as contaminated and to size what a neighbour costs.
"""

import argparse
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--duty", type=float, default=0.05)
p.add_argument("--period", type=float, default=0.1, help="seconds per busy+idle cycle")
p.add_argument("--seconds", type=float, default=600)
args = p.parse_args()
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
b = torch.randn_like(a)
end = time.time() + args.seconds
while time.time() < end:
    t0 = time.time()
    while time.time() - t0 < args.duty * args.period:
        a @ b
        torch.cuda.synchronize()
    time.sleep(max(0.0, args.period - (time.time() - t0)))
