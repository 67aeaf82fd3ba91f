"""`pagedbench history`: each metric's series over kept runs, with the steps in it."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    hi = sub.add_parser("history", help="each metric's series over kept runs, with the steps in it",
                        description="Read every run JSON under DIR (one device), print each metric's series and the "
                                    "steps ruptures' PELT finds in it, with the versions that changed there.")
    hi.add_argument("folder", metavar="DIR")
    hi.add_argument("-k", dest="k", default=None, metavar="SUBSTRING", help="only test ids containing this")
    hi.add_argument("--metric", default=None, help="only this metric")
    hi.add_argument("--plots", default=None, metavar="OUT", help="write history_<tier>.png here")
    hi.add_argument("--steps-only", action="store_true", help="print only series with a step")
    hi.set_defaults(func=run)


def run(args) -> None:
    from pagedbench.history.series import collect, describe, load_runs, plot

    series = collect(load_runs(args.folder), args.k, args.metric)
    for s in series:
        lines = describe(s)
        if len(lines) > 1 or not args.steps_only:
            print("\n".join(lines))
    if args.plots:
        for path in plot(series, Path(args.plots)):
            print(f"wrote {path}")
