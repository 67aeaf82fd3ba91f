"""`pagedbench baseline`: baselines/<slug>.json from several runs, with their run-to-run noise."""

from __future__ import annotations


def register(sub) -> None:
    bs = sub.add_parser("baseline", help="write baselines/<slug>.json from several runs, with run-to-run noise",
                        description="Merge separate runs of one machine kind (same slug and device identity): each "
                                    "metric gets the median of the runs and their relative spread, which the gate's "
                                    "tolerance covers. Failed, contaminated and unstable results are left out.")
    bs.add_argument("runs", nargs="+", metavar="RUN.json[@MACHINE]",
                    help="a run's --metrics-json output; @MACHINE names the machine of a run that did not record "
                         "its machine_id, so the baseline can count the machines its figures come from")
    bs.add_argument("--baselines-dir", metavar="DIR", default="baselines", help="default: baselines")
    bs.add_argument("--calibration", action="store_true",
                    help="the runs measured one commit on one machine: take the clean figures of tests they failed "
                         "too (a failure there is noise the old tolerance did not cover)")
    bs.add_argument("--tests", metavar="GLOB", default="*",
                    help="only test ids matching this glob, e.g. '*test_throughput.py*' (default: all)")
    bs.set_defaults(func=run)


def run(args) -> None:
    from pagedbench.gate.baseline_merge import write_baseline

    paths, notes = write_baseline(args.runs, args.baselines_dir, args.tests, args.calibration)
    for note in notes:
        print(note)
    for path in paths:
        print(f"wrote {path}")
