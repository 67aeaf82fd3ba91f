"""pytest-benchmark's stored runs (baselines/<slug>/<machine id>/NNNN_<save>.json): one per GPU.

`--benchmark-compare` with no argument compares with the newest file of the machine's folder
only, so chunks saved by separate sessions (blocks, throughput, kernels) would each hide the
others. The suite keeps one stored run per folder instead: its saves are merged into the
lowest-numbered file, whose name then stays the same from one update to the next. The
merged file keeps pytest-benchmark's own layout, so its loader and `pytest-benchmark compare`
read it as they read any saved run.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from pagedbench.errors import PagedBenchError

SAVE = "baseline"  # what --update-baselines saves under (conftest), unless --benchmark-save names another


def load_saved(path: str | Path) -> dict:
    """A saved run, checked for what merging reads; PagedBenchError names the file and the field."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PagedBenchError(f"{path}: not a readable pytest-benchmark run ({exc})") from exc
    if not isinstance(doc, dict):
        raise PagedBenchError(f"{path}: top level must be a JSON object")
    for key, typ in (("benchmarks", list), ("machine_info", dict), ("commit_info", dict), ("datetime", str)):
        if not isinstance(doc.get(key), typ):
            raise PagedBenchError(f"{path}: '{key}' missing or not a {typ.__name__}")
    for i, bench in enumerate(doc["benchmarks"]):
        if not isinstance(bench, dict) or not isinstance(bench.get("fullname"), str):
            raise PagedBenchError(f"{path}: benchmarks[{i}] has no 'fullname'")
    try:
        dt.datetime.fromisoformat(doc["datetime"])
    except ValueError as exc:
        raise PagedBenchError(f"{path}: 'datetime' is {doc['datetime']!r}, not an ISO time") from exc
    return doc


def merge_saved(docs: list[dict]) -> dict:
    """Saved runs, oldest first, as one: every benchmark, the later run's where two share a fullname
    (in the place the first had); machine_info, commit_info, datetime and version of the newest."""
    if not docs:
        raise PagedBenchError("nothing to merge: no saved pytest-benchmark runs")
    benchmarks: dict[str, dict] = {}
    for doc in docs:
        for bench in doc["benchmarks"]:
            benchmarks[bench["fullname"]] = bench
    return {**docs[-1], "benchmarks": list(benchmarks.values())}


def merge_files(paths: list[str | Path]) -> dict:
    """merge_saved over files, taken in the order they were saved (their 'datetime'; the name on a tie)."""
    loaded = [(load_saved(p), Path(p).name) for p in paths]
    loaded.sort(key=lambda t: (dt.datetime.fromisoformat(t[0]["datetime"]), t[1]))
    return merge_saved([doc for doc, _ in loaded])


def write_saved(path: str | Path, doc: dict) -> Path:
    """Write as pytest-benchmark does (indent 4, ASCII, no final newline), atomically."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        tmp.write_text(json.dumps(doc, indent=4, ensure_ascii=True))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # left only when the write failed
    return path


def merge_folder(folder: str | Path, save: str = SAVE) -> tuple[Path, list[Path]] | None:
    """One machine folder's NNNN_<save>.json files replaced by their merge under the lowest number:
    (the file written, the files removed), or None when there was at most one."""
    files = sorted(Path(folder).glob(f"[0-9][0-9][0-9][0-9]_{save}.json"))
    if len(files) < 2:
        return None
    merged = merge_files(files)
    # Written before the others go: an interrupted merge leaves files that merge again to the same run.
    write_saved(files[0], merged)
    for extra in files[1:]:
        extra.unlink()
    return files[0], files[1:]


def merge_storage(storage: str | Path, save: str = SAVE) -> list[tuple[Path, list[Path]]]:
    """merge_folder for a storage folder (baselines/h100) and each machine folder under it."""
    storage = Path(storage)
    if not storage.is_dir():
        raise PagedBenchError(f"{storage}: not a folder of pytest-benchmark runs")
    folders = [storage, *sorted(p for p in storage.iterdir() if p.is_dir())]
    return [done for folder in folders if (done := merge_folder(folder, save))]


def merge_session_save(bench_session) -> tuple[Path, list[Path]] | None:
    """After pytest-benchmark saved this session's run: merge it into the machine folder's stored run.
    Only a file storage has a folder to merge in; other storages (or no pytest-benchmark) are left alone."""
    storage, save = getattr(bench_session, "storage", None), getattr(bench_session, "save", None)
    path, machine = getattr(storage, "path", None), getattr(storage, "default_machine_id", None)
    if not save or not isinstance(path, Path) or not machine:
        return None
    return merge_folder(path / machine, save)
