"""Paths and stores checked when the session starts, before any engine or server does.

Output paths and the stores the session reads are checked in `check_session` (numeric options
are refused at parse time, by pagedbench.cli.numbers): a run that could not write its run JSON
or its logs used to find out only at session end, after the measuring, with a traceback. Each problem is one line naming the option.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pagedbench.errors import PagedBenchError


def writable_dir(option: str, folder: str | Path) -> Path:
    """folder, created if missing; PagedBenchError naming the option when nothing can be written there."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise PagedBenchError(f"{option} {folder}: not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".pagedbench-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise PagedBenchError(f"{option} {folder}: cannot write there ({exc.strerror or exc})") from None
    return folder


def writable_file(option: str, path: str | Path) -> Path:
    """A file path whose folder takes files and which is not itself a folder or read-only."""
    path = Path(path)
    if path.is_dir():
        raise PagedBenchError(f"{option} {path}: is a folder, not a file")
    writable_dir(option, path.parent)
    if path.exists() and not os.access(path, os.W_OK):
        raise PagedBenchError(f"{option} {path}: the file is read-only")
    return path


def check_model(option: str, model: str | None) -> None:
    """--model names a folder with a usable config.json (or a shipped model)."""
    if model is None:
        return
    from pagedbench.workloads.model import load_shape, resolve_model_dir

    try:
        load_shape(resolve_model_dir(model))
    except PagedBenchError as exc:
        raise PagedBenchError(f"{option}: {exc}") from None


def _file_storage(storage: str | None) -> Path | None:
    """pytest-benchmark's --benchmark-storage as a folder; None for other storages (elasticsearch)."""
    if not storage:
        return None
    if storage.startswith("file://"):
        return Path(storage[len("file://"):])
    return None if "://" in storage else Path(storage)


def check_session(o, default_run_json: Path) -> None:
    """Every path the session will write and every store it will read or merge into, checked as it
    starts; PagedBenchError with one line naming the option."""
    writable_file("--metrics-json", o.metrics_json or default_run_json)
    writable_dir("--serving-logs", o.serving_logs)
    baselines = Path(o.baselines_dir)
    if baselines.exists() and not baselines.is_dir():
        raise PagedBenchError(f"--baselines-dir {baselines}: not a folder")
    if o.update_baselines:
        writable_dir("--baselines-dir", baselines)
    if o.dataset is not None and not Path(o.dataset).is_file():
        raise PagedBenchError(f"--dataset {o.dataset}: no such file")
    storage = _file_storage(getattr(o, "benchmark_storage", None))
    saving = getattr(o, "benchmark_save", None) or getattr(o, "benchmark_autosave", False)
    if storage is not None and saving:
        from pytest_benchmark.utils import get_machine_id

        writable_dir("--benchmark-storage", storage / get_machine_id())
