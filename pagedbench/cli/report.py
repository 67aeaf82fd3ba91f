"""`pagedbench report`: markdown report and PNG plots from run JSON files."""

from __future__ import annotations

import argparse

from pagedbench.errors import PagedBenchError
from pagedbench.report.capacity import DEFAULT_GPU_HOURLY_COST, check_hourly_cost  # loads no matplotlib: plots import it when they draw


def _hourly_cost(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    try:
        return check_hourly_cost(value)
    except PagedBenchError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub) -> None:
    rep = sub.add_parser("report", help="markdown report and PNG plots from --metrics-json output",
                         description="Write DIR/report.md and PNG plots from one or more run JSON files "
                                     "(several files = chunks of one GPU's run, merged).")
    rep.add_argument("runs", nargs="+", metavar="RUN.json", help="a run's --metrics-json output")
    rep.add_argument("--out", metavar="DIR", default=None, help="output folder (default: reports/<slug>)")
    rep.add_argument("--gpu-hourly-cost", metavar="DOLLARS", type=_hourly_cost, default=DEFAULT_GPU_HOURLY_COST,
                     help="GPU cost in $ per hour for the capacity table's cost per 1M requests "
                          f"(default: {DEFAULT_GPU_HOURLY_COST:.2f})")
    rep.set_defaults(func=run)


def run(args) -> None:
    from pagedbench.report import report

    print(f"wrote {report(args.runs, args.out, args.gpu_hourly_cost)}")
