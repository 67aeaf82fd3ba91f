"""`pagedbench audit`: is each GPU's baseline fit to gate (gate/audit.py)?"""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("audit", help="list, per baseline file, what keeps it from gating well",
                       description="Per baselines/<slug>.json: tests that run on that GPU with no baseline, figures "
                                   "from fewer than 3 runs or 2 machines, tests with no settings recorded, and tests "
                                   "whose code changed since their figures were recorded.")
    p.add_argument("slugs", nargs="*", metavar="SLUG", help="default: every baselines/*.json")
    p.add_argument("--baselines-dir", metavar="DIR", default="baselines", help="default: baselines")
    p.add_argument("--no-collect", action="store_true",
                   help="skip pytest's collection (which lists the tests that run on each GPU)")
    p.add_argument("--all", action="store_true", help="list every finding, not the first few of each kind")
    p.add_argument("--strict", action="store_true", help="exit 1 when any baseline has a finding")
    p.set_defaults(func=run)


def run(args) -> int:
    from pagedbench.errors import PagedBenchError
    from pagedbench.gate import audit
    from pagedbench.gate import baseline_file as bl

    root = Path.cwd()
    folder = Path(args.baselines_dir)
    paths = [folder / f"{s}.json" for s in args.slugs] or sorted(folder.glob("*.json"))
    if not paths:
        raise PagedBenchError(f"{folder}: no baseline files")
    findings = []
    for path in paths:
        base = bl.load(path)
        if base is None:
            raise PagedBenchError(f"{path}: no such baseline")
        ids = None if args.no_collect else audit.collected_ids(base.slug, root)
        findings.append(audit.audit(base, ids, root))
        for line in audit.report_lines(findings[-1], limit=10**9 if args.all else 8):
            print(line)
        if ids is None and not args.no_collect:
            print("  (pytest's collection failed: tests with no baseline not listed)")
    return 1 if args.strict and not all(f.clean for f in findings) else 0
