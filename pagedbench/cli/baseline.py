"""`pagedbench baseline`: baselines/<slug>.json from several runs, with their run-to-run noise and timings."""

from __future__ import annotations

from pagedbench.errors import PagedBenchError


def register(sub) -> None:
    bs = sub.add_parser("baseline", help="write baselines/<slug>.json from several runs, with run-to-run noise",
                        description="Merge separate runs of one machine kind (same slug and device identity): each "
                                    "metric gets the median of the runs and their relative spread, which the gate's "
                                    "tolerance covers, and each test the timing stats of its median run, which "
                                    "--benchmark-compare shows. Failed, contaminated and unstable results are left out.")
    bs.add_argument("runs", nargs="*", metavar="RUN.json[@MACHINE]",
                    help="a run's --metrics-json output; @MACHINE names the machine of a run that did not record "
                         "its machine_id, so the baseline can count the machines its figures come from")
    bs.add_argument("--baselines-dir", metavar="DIR", default="baselines", help="default: baselines")
    bs.add_argument("--calibration", action="store_true",
                    help="the runs measured one commit on one machine: take the clean figures of tests they failed "
                         "too (a failure there is noise the old tolerance did not cover)")
    bs.add_argument("--tests", metavar="GLOB", default="*",
                    help="only test ids matching this glob, e.g. '*test_throughput.py*' (default: all)")
    bs.add_argument("--import-timings", nargs="+", metavar="FOLDER", default=[],
                    help="pytest-benchmark storage folders of the former layout (baselines/<slug>/<machine id>/"
                         "NNNN_*.json): each machine's newest saved run's timings into baselines/<slug>.json")
    bs.add_argument("--drop", metavar="GLOB",
                    help="remove the tests matching GLOB from baselines/<slug>.json (every slug with --slug unset): "
                         "figures of a workload the code no longer runs, which must be recorded again")
    bs.add_argument("--slug", metavar="SLUG", help="with --drop: only this GPU's baseline")
    bs.set_defaults(func=run)


def run(args) -> None:
    from pagedbench.gate.baseline_merge import write_baseline
    from pagedbench.gate.benchmark_compare import import_stored_runs

    if args.drop:
        return drop(args)
    if not args.runs and not args.import_timings:
        raise PagedBenchError("baseline: give run files (RUN.json ...), --import-timings FOLDER or --drop GLOB")
    for folder in args.import_timings:
        for note in import_stored_runs(folder, args.baselines_dir):
            print(note)
    if args.runs:
        paths, notes = write_baseline(args.runs, args.baselines_dir, args.tests, args.calibration)
        for note in notes:
            print(note)
        for path in paths:
            print(f"wrote {path}")


def drop(args) -> None:
    from pathlib import Path

    from pagedbench.gate import baseline_file as bl

    folder = Path(args.baselines_dir)
    paths = [folder / f"{args.slug}.json"] if args.slug else sorted(folder.glob("*.json"))
    with bl.update_lock(folder):
        for path in paths:
            base = bl.load(path)
            if base is None:
                raise PagedBenchError(f"{path}: no such baseline")
            kept, gone = bl.drop(base, args.drop)
            if gone:
                bl.write_atomic(path, kept)
            print(f"{path}: dropped {len(gone)} test(s) matching {args.drop!r}")
