"""`pagedbench bisect`: git bisect over commits, or a search over vLLM wheels, with the gate as the oracle."""

from __future__ import annotations

import argparse
import sys

from pagedbench.errors import PagedBenchError


def register(sub) -> None:
    bi = sub.add_parser("bisect", help="git bisect, or a search over vLLM wheels, with the gate as the oracle",
                        description="Measure --good as the baseline, then bisect to --bad running the given pytest "
                                    "selection at each step (0 good, 1 bad, 125 skip). With --wheels instead: the "
                                    "suite stays, the oldest wheel is the baseline, the first bad wheel is searched.")
    bi.add_argument("--good", metavar="REV")
    bi.add_argument("--bad", metavar="REV")
    bi.add_argument("--repo", default=".", metavar="DIR", help="the suite's repository (default: .)")
    bi.add_argument("--wheels", metavar="FILE|LIST",
                    help="wheel paths, pip requirements or versions, oldest (good) to newest (bad): a file of one a "
                         "line or a comma-separated list")
    bi.add_argument("--package", default="vllm", help="what a bare version in --wheels pins (default: vllm)")
    bi.add_argument("--python", default=sys.executable, metavar="PY",
                    help="interpreter that installs and runs each step (default: this one)")
    bi.add_argument("--install-cmd", default=None, metavar="TEMPLATE",
                    help="shell line installing {wheel} with {python} (default: pip install --no-deps --target "
                         "{target}, a fresh folder put first on the import path: the environment is not changed)")
    bi.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then the pytest selection, e.g. -k 'vllm_throughput and cpu'")
    bi.set_defaults(func=run)


def run(args) -> None:
    extra = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    commits = args.good is not None and args.bad is not None
    if not (commits and not args.wheels or args.wheels and args.good is None and args.bad is None):
        raise PagedBenchError("bisect takes either --good REV and --bad REV, or --wheels")
    if not args.wheels:
        from pagedbench.cli.bisect_commits import bisect

        print(f"first bad commit: {bisect(args.repo, args.good, args.bad, extra)}")
        return
    from pagedbench.cli.bisect_wheels import DEFAULT_INSTALL, bisect_wheels, read_wheels

    found = bisect_wheels(read_wheels(args.wheels, args.package), extra, args.repo, args.python,
                          args.install_cmd or DEFAULT_INSTALL)
    if len(found) == 1:
        print(f"first bad wheel: {found[0]}")
    else:
        print(f"first bad wheel is one of (skipped steps stand before it): {', '.join(found)}")
