"""`pagedbench readme`: the README's measured blocks regenerated from the kept runs."""

from __future__ import annotations


def register(sub) -> None:
    rd = sub.add_parser("readme", help="regenerate the README's measured blocks from reports/<slug>/runs/*.json",
                        description="Rewrite the README between <!-- figures:start/end --> (one row per GPU slug) "
                                    "and <!-- cpu-tables:start/end --> (the tutorial's tables from reports/cpu/runs/). "
                                    "Nothing else in the README changes.")
    rd.add_argument("--readme", metavar="PATH", default="README.md", help="the README to update (default: README.md)")
    rd.add_argument("--reports", metavar="DIR", default="reports",
                    help="folder holding <slug>/runs/*.json (default: reports)")
    rd.set_defaults(func=run)


def run(args) -> None:
    from pagedbench.report.readme import update_readme

    changed = update_readme(args.readme, args.reports)
    print(f"{'updated' if changed else 'unchanged:'} {args.readme}")
