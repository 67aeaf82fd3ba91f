"""`pagedbench merge-timings`: pytest-benchmark's saved runs of one GPU merged into one."""

from __future__ import annotations

from pagedbench.gate import stored_timings


def register(sub) -> None:
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
    mt.set_defaults(func=run)


def run(args) -> None:
    _merge_timings(args.paths, args.out, args.save)


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
