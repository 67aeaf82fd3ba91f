"""Command line.

    python -m pagedbench report RUN.json [RUN.json ...] [--out DIR] [--gpu-hourly-cost DOLLARS]
    python -m pagedbench readme [--readme README.md] [--reports reports]
    python -m pagedbench baseline RUN.json [RUN.json ...] [--baselines-dir baselines]
    python -m pagedbench history DIR [-k SUBSTRING] [--metric NAME] [--plots OUT]
    python -m pagedbench bisect --good REV --bad REV [--repo DIR] -- <pytest args>
    python -m pagedbench merge-timings baselines/h100 [...] | SAVED.json ... --out FILE
    python -m pagedbench bisect --wheels FILE|W1,W2,... [--install-cmd T] [--python PY] [--repo DIR] -- <pytest args>
    python -m pagedbench detectors [--trials N] [--seed S] [--readme README.md]

Exit codes: 0 written, 2 bad input (unreadable or wrong-schema run JSON, README without its markers,
bad arguments).
"""

from __future__ import annotations

import argparse
import sys

from pagedbench.cli.numbers import positive_int
from pagedbench.errors import PagedBenchError
from pagedbench.gate import stored_timings
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pagedbench", description="pagedbench tools")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="markdown report and PNG plots from --metrics-json output",
                         description="Write DIR/report.md and PNG plots from one or more run JSON files "
                                     "(several files = chunks of one GPU's run, merged).")
    rep.add_argument("runs", nargs="+", metavar="RUN.json", help="a run's --metrics-json output")
    rep.add_argument("--out", metavar="DIR", default=None, help="output folder (default: reports/<slug>)")
    rep.add_argument("--gpu-hourly-cost", metavar="DOLLARS", type=_hourly_cost, default=DEFAULT_GPU_HOURLY_COST,
                     help="GPU cost in $ per hour for the capacity table's cost per 1M requests "
                          f"(default: {DEFAULT_GPU_HOURLY_COST:.2f})")
    rd = sub.add_parser("readme", help="regenerate the README's measured blocks from reports/<slug>/runs/*.json",
                        description="Rewrite the README between <!-- figures:start/end --> (one row per GPU slug) "
                                    "and <!-- cpu-tables:start/end --> (the tutorial's tables from reports/cpu/runs/). "
                                    "Nothing else in the README changes.")
    rd.add_argument("--readme", metavar="PATH", default="README.md", help="the README to update (default: README.md)")
    rd.add_argument("--reports", metavar="DIR", default="reports",
                    help="folder holding <slug>/runs/*.json (default: reports)")
    bs = sub.add_parser("baseline", help="write baselines/<slug>.json from several runs, with run-to-run noise",
                        description="Merge separate runs of one machine kind (same slug and device identity): each "
                                    "metric gets the median of the runs and their relative spread, which the gate's "
                                    "tolerance covers. Failed, contaminated and unstable results are left out.")
    bs.add_argument("runs", nargs="+", metavar="RUN.json", help="a run's --metrics-json output")
    bs.add_argument("--baselines-dir", metavar="DIR", default="baselines", help="default: baselines")
    bs.add_argument("--calibration", action="store_true",
                    help="the runs measured one commit on one machine: take the clean figures of tests they failed "
                         "too (a failure there is noise the old tolerance did not cover)")
    bs.add_argument("--tests", metavar="GLOB", default="*",
                    help="only test ids matching this glob, e.g. '*test_throughput.py*' (default: all)")
    hi = sub.add_parser("history", help="each metric's series over kept runs, with the steps in it",
                        description="Read every run JSON under DIR (one device), print each metric's series and the "
                                    "steps ruptures' PELT finds in it, with the versions that changed there.")
    hi.add_argument("folder", metavar="DIR")
    hi.add_argument("-k", dest="k", default=None, metavar="SUBSTRING", help="only test ids containing this")
    hi.add_argument("--metric", default=None, help="only this metric")
    hi.add_argument("--plots", default=None, metavar="OUT", help="write history_<tier>.png here")
    hi.add_argument("--steps-only", action="store_true", help="print only series with a step")
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
    mt = sub.add_parser("merge-timings", help="pytest-benchmark's saved runs of one GPU merged into one",
                        description="--benchmark-compare compares with the newest saved run only: chunks saved by "
                                    "separate sessions become one run (a later run wins for the same test; machine "
                                    "and commit info of the newest), in pytest-benchmark's own format.")
    mt.add_argument("paths", nargs="+", metavar="PATH",
                    help="a storage folder (baselines/h100: each machine folder's NNNN_baseline.json files are "
                         "replaced by one) or, with --out, saved run files")
    mt.add_argument("--out", metavar="FILE", default=None, help="write the merge of the given files here")
    mt.add_argument("--save", default=stored_timings.SAVE,
                    help=f"the save name merged in a folder (default: {stored_timings.SAVE})")
    de = sub.add_parser("detectors", help="the change-point candidates on synthetic series: a markdown table",
                        description="Run every importable candidate (Otava's where apache-otava imports) on seeded "
                                    "series with and without one step; print the table, or write it into the README.")
    de.add_argument("--trials", type=positive_int, default=60, help="stepped and step-free series each (default: 60)")
    de.add_argument("--seed", type=int, default=0)
    de.add_argument("--readme", default=None, metavar="PATH", help="replace the table between the detectors markers")
    return parser


def _bisect(args) -> None:
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "report":
            from pagedbench.report import report

            print(f"wrote {report(args.runs, args.out, args.gpu_hourly_cost)}")
        elif args.command == "readme":
            from pagedbench.report.readme import update_readme

            changed = update_readme(args.readme, args.reports)
            print(f"{'updated' if changed else 'unchanged:'} {args.readme}")
        elif args.command == "history":
            from pagedbench.history.series import collect, describe, load_runs, plot

            series = collect(load_runs(args.folder), args.k, args.metric)
            for s in series:
                lines = describe(s)
                if len(lines) > 1 or not args.steps_only:
                    print("\n".join(lines))
            if args.plots:
                from pathlib import Path
                for path in plot(series, Path(args.plots)):
                    print(f"wrote {path}")
        elif args.command == "bisect":
            _bisect(args)
        elif args.command == "detectors":
            from pagedbench.history.detectors import compare, table, write_readme

            text = table(compare(args.trials, 30, args.seed), args.trials, 30, args.seed)
            print(text)
            if args.readme:
                print(f"{'updated' if write_readme(args.readme, text) else 'unchanged:'} {args.readme}")
        elif args.command == "baseline":
            from pagedbench.gate.baseline_merge import write_baseline

            paths, notes = write_baseline(args.runs, args.baselines_dir, args.tests, args.calibration)
            for note in notes:
                print(note)
            for path in paths:
                print(f"wrote {path}")
        elif args.command == "merge-timings":
            _merge_timings(args.paths, args.out, args.save)
    except PagedBenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _merge_timings(paths: list[str], out: str | None, save: str) -> None:
    if out is not None:
        print(f"wrote {stored_timings.write_saved(out, stored_timings.merge_files(paths))}")
        return
    for folder in paths:
        merged = stored_timings.merge_storage(folder, save)
        for written, removed in merged:
            print(f"wrote {written} (merged {len(removed) + 1} runs; removed {', '.join(p.name for p in removed)})")
        if not merged:
            print(f"unchanged: {folder} (no folder with more than one NNNN_{save}.json)")
