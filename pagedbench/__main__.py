"""Command line: `python -m pagedbench report RUN.json [RUN.json ...] [--out DIR]`.

Exit codes: 0 written, 2 bad input (unreadable or wrong-schema run JSON, bad arguments).
"""

from __future__ import annotations

import argparse
import sys

from .errors import PagedBenchError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pagedbench", description="pagedbench tools")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="markdown report and PNG plots from --metrics-json output",
                         description="Write DIR/report.md and PNG plots from one or more run JSON files "
                                     "(several files = chunks of one GPU's run, merged).")
    rep.add_argument("runs", nargs="+", metavar="RUN.json", help="a run's --metrics-json output")
    rep.add_argument("--out", metavar="DIR", default=None, help="output folder (default: reports/<slug>)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "report":
        from .report import report  # matplotlib loads only when a report is asked for

        try:
            path = report(args.runs, args.out)
        except PagedBenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
