"""One side of a two-engine comparison run in a process of its own.

    python -m pagedbench.engines.side_process SPEC.json OUT.json

On a GPU (vLLM 0.26.0, torch 2.11, H200; docs/hardware-notes.md, "Incidents") a compiled engine started after a compiled bf16
engine had run in the same process failed its CUDA-graph capture with PyTorch's `it->second->use_count
> 0 INTERNAL ASSERT FAILED` (CUDACachingAllocator.cpp): the fp8 side of test_kv_cache_dtype_throughput
in two sessions, and a bare script starting two bf16 engines one after the other (eager then compiled
did not fail). The side whose settings no other test shares runs here, in a fresh process, with the
same `timed_generate` rounds and output check as the in-process side.

SPEC.json: {"settings": EngineSettings fields, "requests": [[prompt ids, output len], ...],
"rounds": n, "check": {"model_dir", "device", "load_format"}}.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from pagedbench.engines.child_run import run_child
from pagedbench.errors import PagedBenchError, StartError
from pagedbench.workloads.requests import Request, Workload


@dataclasses.dataclass(frozen=True)
class SideResult:
    rounds: list[tuple[int, int, float]]   # (prompt tokens, output tokens, seconds) per timed round
    num_gpu_blocks: int
    check_ids: list[tuple[int, ...]]       # greedy ids of the output check's requests
    effective: dict                        # what vLLM resolved the settings to


def _workload(name: str, pairs: list, max_seq_len: int) -> Workload:
    return Workload(name, tuple(Request(tuple(p), o) for p, o in pairs), max_seq_len, 0)


def side_rounds(fn, rounds: int, warmup: int = 1) -> list:
    """The same rounds as meters.device_timing.timed_rounds, for the second side of a comparison inside one test:
    pytest-benchmark times one function per test, and two 8B engines do not fit one GPU together,
    so the sides run one after the other, each bracketed by the same `timed_generate`."""
    for _ in range(warmup):
        fn()
    return [fn() for _ in range(rounds)]


def main(argv: list[str]) -> None:
    from pagedbench.engines.engine_settings import EngineSettings
    from pagedbench.engines.output_check import checked_ids

    spec = json.loads(Path(argv[0]).read_text())
    settings = EngineSettings(**spec["settings"])
    wl = _workload("side", spec["requests"], settings.max_model_len)
    try:
        engine = settings.start()
    except StartError as exc:  # vLLM's own words, for the parent to skip or fail on
        Path(argv[1]).write_text(json.dumps({"start_error": str(exc)}))
        return
    try:
        rounds = side_rounds(lambda: engine.timed_generate(wl), spec["rounds"])
        check = spec["check"]
        ids = checked_ids(engine, check["model_dir"], check["device"], check["load_format"])
        out = dict(rounds=rounds, num_gpu_blocks=engine.num_gpu_blocks, check_ids=ids, effective=engine.effective())
    finally:
        engine.shutdown()
    Path(argv[1]).write_text(json.dumps(out))


def run_side(settings, workload: Workload, rounds: int, check: dict, work_dir: Path,
             timeout_s: float = 900) -> SideResult:
    """The engine of `settings` started in a child process, `rounds` timed rounds of `workload` after one
    warm-up, then the output check. A start vLLM refused, or a child that died, raises StartError (with
    `unsupported` set where vLLM refused the settings themselves: a skip). The default timeout covers a
    first compile on the machine and the rounds."""
    spec = {"settings": dataclasses.asdict(settings), "rounds": rounds, "check": check,
            "requests": [[list(r.prompt_token_ids), r.output_len] for r in workload.requests]}
    try:
        res, _ = run_child("pagedbench.engines.side_process", "engine side", spec, work_dir, timeout_s)
    except PagedBenchError as exc:  # the child died: its log tail is in the message
        raise StartError(str(exc)) from exc
    if "start_error" in res:
        raise StartError(res["start_error"])
    return SideResult([tuple(r) for r in res["rounds"]], res["num_gpu_blocks"],
                      [tuple(i) for i in res["check_ids"]], res["effective"])


if __name__ == "__main__":
    main(sys.argv[1:])
