"""vLLM's own offline throughput benchmark (`vllm bench throughput`) on the suite's requests.

    python -m pagedbench.engines.vllm_bench_throughput REQUESTS.json OUT.json

REQUESTS.json: {"engine_args": {...}, "requests": [[prompt ids, output len], ...],
"warmup": [...]}. It runs `vllm.benchmarks.throughput.run_vllm` — the function behind
`vllm bench throughput` — in a process of its own at vLLM's defaults (the engine core in
its own process, as a user's run has it), and writes vLLM's figures: elapsed seconds and
output tok/s computed as `vllm bench throughput` prints them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pagedbench.engines.child_run import run_child
from pagedbench.workloads.requests import Workload


def _sample_requests(pairs):
    from vllm.benchmarks.datasets import SampleRequest

    return [SampleRequest(prompt={"prompt_token_ids": list(ids)}, prompt_len=len(ids), expected_output_len=out)
            for ids, out in pairs]


def main(argv: list[str]) -> None:
    from vllm.benchmarks.throughput import run_vllm
    from vllm.engine.arg_utils import EngineArgs

    spec = json.loads(Path(argv[0]).read_text())
    requests = _sample_requests(spec["requests"])
    elapsed, _ = run_vllm(requests, 1, EngineArgs(**spec["engine_args"]), do_profile=False, disable_detokenize=True,
                          warmup_requests=_sample_requests(spec["warmup"]))
    out_tokens = sum(r.expected_output_len for r in requests)  # as `vllm bench throughput` counts them
    Path(argv[1]).write_text(json.dumps({"elapsed_s": elapsed, "output_tok_per_s": out_tokens / elapsed,
                                         "req_per_s": len(requests) / elapsed}))


def _pairs(workload: Workload) -> list:
    return [[list(r.prompt_token_ids), r.output_len] for r in workload.requests]


def run_reference(engine_args: dict, workload: Workload, warmup: Workload, work_dir: Path, timeout_s: float) -> dict:
    """vLLM's figures for `workload` in a child process (its log beside the files)."""
    spec = {"engine_args": engine_args, "requests": _pairs(workload), "warmup": _pairs(warmup)}
    return run_child("pagedbench.engines.vllm_bench_throughput", "vllm bench throughput", spec, work_dir, timeout_s)[0]


if __name__ == "__main__":
    main(sys.argv[1:])
