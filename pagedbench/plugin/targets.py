"""Test ids that carry the device: `-k h100` selects exactly the H100 cases.

Every device-bound test has cases for the devices the suite knows (the CPU, the
GPUs with a baseline, the GPU of this machine), with per-device values for its
other parameters (block sizes, batch sizes) from a `matrix` marker. Only this
machine's cases are collected unless --pagedbench-device or --all-devices asks for
others' (to list or dry-run them: they skip here, with the reason).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from pagedbench.device import is_multi_slug, multi_slug

KNOWN_GPUS = ("h100", "h200")
HOPPER = frozenset({"h100", "h200"})  # compute capability 9.0: vLLM's attention backends there refuse 8-token blocks

# CPU attention takes only multiples of 32; Hopper backends refuse 8 (test_block_counts checks
# that they still do), so GPU sweeps start at 16.
ID_FORMAT = {
    "block_size": "bs{}".format, "batch": "b{}".format, "max_num_seqs": "mns{}".format, "context": "ctx{}".format,
    "prefix_caching": lambda on: "cache_on" if on else "cache_off", "tp": "tp{}".format,
}


@dataclass(frozen=True)
class Target:
    slug: str      # 'cpu', 'h100', 'h200x2', ...
    gpus: int = 0  # GPUs the case uses (0 on CPU)

    @property
    def kind(self) -> str:
        return "cpu" if self.gpus == 0 else "gpu"

    def __str__(self) -> str:
        return self.slug


def known_slugs(baselines_dir: Path, current: str) -> list[str]:
    """Single-GPU slugs: the known ones, those with a baseline file, this machine's."""
    found = {p.stem for p in Path(baselines_dir).glob("*.json")}
    single = {s for s in found if s != "cpu" and not is_multi_slug(s)}
    return sorted(set(KNOWN_GPUS) | single | ({current} if current != "cpu" else set()))


def cases(marker_kwargs: dict, gpu_slugs: list[str], gpu_only: bool, tp: int = 1) -> tuple[list[str], list[tuple], list[str]]:
    """(argnames, values, ids) for a test: `target` first, then the matrix's own names."""
    per_kind = {k: marker_kwargs.get(k, {}) for k in ("cpu", "gpu")}
    names = list(per_kind["gpu"] or per_kind["cpu"])
    targets = [] if gpu_only else [Target("cpu")]
    targets += [Target(multi_slug(s, tp), tp) for s in gpu_slugs]
    values, ids = [], []
    for t in targets:
        grid = per_kind[t.kind]
        if names and set(grid) != set(names):
            continue  # no values for this kind: the test does not run there
        for combo in itertools.product(*(grid[n] for n in names)):
            values.append((t, *combo))
            ids.append("-".join([t.slug, *(ID_FORMAT.get(n, str)(v) for n, v in zip(names, combo))]))
    return ["target", *names], values, ids


def skip_reason(target: Target, device) -> str | None:
    """Why this machine (a gpu.Device) does not run a case for `target`; None when it does."""
    if target.kind == "cpu" and device.is_gpu:
        return f"CPU case; this machine runs the {device.slug} cases"
    if target.kind == "gpu":
        if not device.is_gpu:
            return f"needs a {target.slug} GPU; this machine has no CUDA device"
        if device.multi_slug(target.gpus) != target.slug or device.count < target.gpus:
            return f"{target.slug} case; this machine is {device.multi_slug(device.count)}"
    return None


def wanted(target: Target, device, slugs: list[str] | None, every: bool) -> bool:
    """Is this case collected: this machine's by default, the asked-for devices' (a GPU slug takes its
    multi-GPU cases too: h200 -> h200x2) or all of them."""
    if every:
        return True
    if slugs:
        return any(target.slug == s or target.slug.startswith(f"{s}x") for s in slugs)
    return skip_reason(target, device) is None


def run_order(path: str, params: dict) -> tuple:
    """Sort key that groups cases sharing an engine, so each starts once (module, device, block size,
    caching), and kernel cases sharing input tensors, so every implementation runs on one set
    (context, batch, order)."""
    shape = (params["context"], params.get("batch", 0), params.get("order", "")) if "context" in params else ()
    return (path, str(params.get("target", "")), params.get("block_size", 0),
            bool(params.get("prefix_caching", False)), *shape)
