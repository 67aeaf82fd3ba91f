"""One of vLLM's own benchmarks run in a process of its own: spec in, result JSON out, log kept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pagedbench.engines.vllm_offline import child_env
from pagedbench.errors import PagedBenchError


def run_child(module: str, what: str, spec: dict, work_dir: Path, timeout_s: float, env_extra=()) -> tuple[dict, Path]:
    """`python -m module SPEC.json OUT.json` in its own session; (its result, its log)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    spec_file, out, log = work_dir / "spec.json", work_dir / "result.json", work_dir / f"{what.replace(' ', '-')}.log"
    spec_file.write_text(json.dumps(spec))
    out.unlink(missing_ok=True)
    with open(log, "w") as f:
        try:
            proc = subprocess.run([sys.executable, "-m", module, str(spec_file), str(out)],
                                  stdout=f, stderr=subprocess.STDOUT, env=child_env(env_extra), timeout=timeout_s,
                                  start_new_session=True)
        except subprocess.TimeoutExpired as exc:
            raise PagedBenchError(f"{what} did not finish in {timeout_s:.0f} s (log: {log})") from exc
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise PagedBenchError(f"{what} failed (exit {proc.returncode}, log: {log}):\n{tail}")
    return json.loads(out.read_text()), log
