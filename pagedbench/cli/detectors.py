"""`pagedbench detectors`: the change-point candidates on synthetic series, as a markdown table."""

from __future__ import annotations

from pagedbench.cli.numbers import positive_int


def register(sub) -> None:
    de = sub.add_parser("detectors", help="the change-point candidates on synthetic series: a markdown table",
                        description="Run every importable candidate (Otava's where apache-otava imports) on seeded "
                                    "series with and without one step; print the table, or write it into the README.")
    de.add_argument("--trials", type=positive_int, default=60, help="stepped and step-free series each (default: 60)")
    de.add_argument("--seed", type=int, default=0)
    de.add_argument("--readme", default=None, metavar="PATH", help="replace the table between the detectors markers")
    de.set_defaults(func=run)


def run(args) -> None:
    from pagedbench.history.detectors import compare, table, write_readme

    text = table(compare(args.trials, 30, args.seed), args.trials, 30, args.seed)
    print(text)
    if args.readme:
        print(f"{'updated' if write_readme(args.readme, text) else 'unchanged:'} {args.readme}")
