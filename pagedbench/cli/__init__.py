"""Command line.

    pagedbench report RUN.json [RUN.json ...] [--out DIR] [--gpu-hourly-cost DOLLARS]
    pagedbench readme [--readme README.md] [--reports reports]
    pagedbench baseline RUN.json [RUN.json ...] [--baselines-dir baselines]
    pagedbench baseline --import-timings baselines/h100 [...]
    pagedbench audit [SLUG ...] [--strict]
    pagedbench history DIR [-k SUBSTRING] [--metric NAME] [--plots OUT]
    pagedbench bisect --good REV --bad REV [--repo DIR] -- <pytest args>
    pagedbench bisect --wheels FILE|W1,W2,... [--install-cmd T] [--python PY] [--repo DIR] -- <pytest args>
    pagedbench ab --a SPEC --b SPEC [--rounds N] [--threshold F] [--out AB.json] -- <pytest args>
    pagedbench detectors [--trials N] [--seed S] [--readme README.md]

Exit codes: 0 written, 2 bad input (unreadable or wrong-schema run JSON, README without its markers,
bad arguments).

`python -m pagedbench ...` runs the same. One module per subcommand (cli/<name>.py): `register(sub)` adds its
parser, with `func` set to the function that runs it.
"""

from __future__ import annotations

import argparse
import sys

from pagedbench.cli import ab, audit, baseline, bisect_command, detectors, history, readme, report
from pagedbench.errors import PagedBenchError

COMMANDS = (report, readme, baseline, audit, history, bisect_command, ab, detectors)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pagedbench", description="pagedbench tools")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except PagedBenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
