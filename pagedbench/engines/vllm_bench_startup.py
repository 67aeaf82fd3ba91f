"""Engine start-up, cold and warm, measured by vLLM's own `vllm bench startup`.

    python -m pagedbench.engines.vllm_bench_startup SPEC.json OUT.json

SPEC.json: {"engine_args": {...}}. The child runs `vllm.benchmarks.startup.main` with one cold
start (vLLM's cache root and inductor's cache emptied), one warm-up start and one warm start,
each in a fresh process as vLLM's benchmark makes them. The phases vLLM logs on the way (model
load, torch.compile, KV-cache profiling, CUDA-graph capture) are read from the child's log.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from pagedbench.engines.child_run import run_child

# vLLM's own start-up log lines; the last match of each wins (the warm start comes last).
PHASES = {
    "model_load_s": r"Model loading took [\d.]+ GiB (?:memory )?and ([\d.]+) seconds",
    "compile_s": r"torch\.compile takes? ([\d.]+) s in total",
    "graph_capture_s": r"Graph capturing finished in ([\d.]+) secs",
    "engine_init_s": r"init engine \(profile, create kv cache, warmup model\) took ([\d.]+) seconds",
}


def main(argv: list[str]) -> None:
    from vllm.benchmarks.startup import add_cli_args
    from vllm.benchmarks.startup import main as startup_main
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    spec = json.loads(Path(argv[0]).read_text())
    engine_args = spec["engine_args"]
    args = add_cli_args(FlexibleArgumentParser()).parse_args(
        ["--model", engine_args["model"], "--num-iters-cold", "1", "--num-iters-warmup", "1",
         "--num-iters-warm", "1", "--output-json", argv[1]])
    for name, value in engine_args.items():  # EngineArgs.from_cli_args reads every field from here
        setattr(args, name, value)
    startup_main(args)


def phases(log_text: str) -> dict[str, float]:
    out = {}
    for name, pattern in PHASES.items():
        found = re.findall(pattern, log_text)
        if found:
            out[name] = float(found[-1])
    return out


def run_startup(engine_args: dict, work_dir: Path, timeout_s: float) -> dict:
    """{"cold_s", "warm_s", "cold_compile_s", "warm_compile_s", phases...} from vLLM's benchmark."""
    # The warm start must find what the warm-up start cached, not a user's cache.
    res, log = run_child("pagedbench.engines.vllm_bench_startup", "vllm bench startup", {"engine_args": engine_args}, work_dir,
                         timeout_s, {"VLLM_CACHE_ROOT": str(work_dir / "vllm-cache")})
    return dict(cold_s=res["avg_cold_startup_time"], warm_s=res["avg_warm_startup_time"],
                cold_compile_s=res["avg_cold_compilation_time"], warm_compile_s=res["avg_warm_compilation_time"],
                **phases(log.read_text(errors="replace")))


if __name__ == "__main__":
    main(sys.argv[1:])
