"""The run JSON (`--metrics-json`): one session's results, written by the gate, read by the tools.

This module is the format's only owner: what the gate writes at session end and what
`report`, `readme`, `baseline` and `history` accept both come from here. Baseline files
(baselines/<slug>.json) are another format, with their own baseline.SCHEMA_VERSION.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from pagedbench.errors import PagedBenchError

RUN_SCHEMA_VERSION = 1
OUTCOMES = ("passed", "failed", "skipped")

_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # the slug becomes a folder name


def now() -> str:
    """A UTC timestamp as the run JSON keeps it ('started', 'finished')."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


# ---- writing ---------------------------------------------------------------------------

def run_document(device: dict, identity: str, versions: dict, commit: str, started: str, interrupted: bool,
                 tests: dict) -> dict:
    """The run JSON of a session that ends now; tests maps a test id to its entry."""
    return {
        "schema_version": RUN_SCHEMA_VERSION, "slug": device.get("slug", "cpu"), "gpu": device,
        "identity": identity, "versions": versions, "commit": commit, "started": started,
        "finished": now(), "interrupted": interrupted, "tests": tests,
    }


def write_run(path: str | Path, doc: dict) -> Path:
    """Write doc to path atomically: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # left only when the write failed
    return path


# ---- reading and validating --------------------------------------------------------------

# The benchmarks moved from tests/ to tests/benchmarks/; ids that runs and baselines recorded before the
# move are read as the ids the same tests have now, so baselines and kept runs still match them.
MOVED_BENCHMARKS = ("test_decode_kernels", "test_serving", "test_tensor_parallel", "test_throughput",
                    "test_vllm_block_pool", "test_vllm_settings")


def current_test_id(test_id: str) -> str:
    for name in MOVED_BENCHMARKS:
        if test_id.startswith(f"tests/{name}.py::"):
            return "tests/benchmarks/" + test_id[len("tests/"):]
    return test_id


def _fail(path, msg: str) -> PagedBenchError:
    return PagedBenchError(f"{path}: {msg}")


def is_number(v) -> bool:
    """A JSON number: int or float, and not a bool (which Python counts as an int)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def validate_run(doc, path="<run>") -> dict:
    """Check the shape of a metrics JSON; every problem names the file and the field."""
    if not isinstance(doc, dict):
        raise _fail(path, "top level must be a JSON object")
    if type(doc.get("schema_version")) is not int or doc["schema_version"] != RUN_SCHEMA_VERSION:  # not true, 1.0
        raise _fail(path, f"schema_version is {doc.get('schema_version')!r}, this report reads {RUN_SCHEMA_VERSION}")
    slug = doc.get("slug")
    if not isinstance(slug, str) or not _SLUG.match(slug):
        raise _fail(path, f"'slug' must be a short name like 'h100', got {slug!r}")
    for key in ("gpu", "versions", "tests"):
        if not isinstance(doc.get(key), dict):
            raise _fail(path, f"'{key}' missing or not an object")
    for nodeid, entry in doc["tests"].items():
        _validate_test(path, nodeid, entry)
    return doc


def _validate_test(path, nodeid: str, entry) -> None:
    where = f"tests[{nodeid!r}]"
    if not isinstance(entry, dict):
        raise _fail(path, f"{where} must be an object")
    if entry.get("outcome") not in OUTCOMES:
        raise _fail(path, f"{where}.outcome is {entry.get('outcome')!r}, expected one of {OUTCOMES}")
    for key, typ in (("params", dict), ("metrics", dict), ("series", dict), ("comparisons", list)):
        if not isinstance(entry.get(key, typ()), typ):
            raise _fail(path, f"{where}.{key} must be a {'list' if typ is list else 'object'}")
    for name, m in entry.get("metrics", {}).items():
        if not isinstance(m, dict) or not is_number(m.get("value")):
            raise _fail(path, f"{where}.metrics[{name!r}] must be an object with a numeric 'value'")
    for name, points in entry.get("series", {}).items():
        ok = isinstance(points, list) and all(
            isinstance(p, list) and len(p) == 2 and all(is_number(x) for x in p) for p in points)
        if not ok:
            raise _fail(path, f"{where}.series[{name!r}] must be a list of [t_seconds, value] pairs")
    for i, c in enumerate(entry.get("comparisons", [])):
        if not isinstance(c, dict) or not isinstance(c.get("status"), str):
            raise _fail(path, f"{where}.comparisons[{i}] must be an object with a 'status'")


def load_run(path: str | Path) -> dict:
    """A validated run document; PagedBenchError naming the file when it is unusable."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot read ({exc})") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    doc = validate_run(doc, path)
    doc["tests"] = {current_test_id(k): v for k, v in doc["tests"].items()}
    for entry in doc["tests"].values():
        for c in entry.get("comparisons", []):
            if isinstance(c.get("test_id"), str):
                c["test_id"] = current_test_id(c["test_id"])
    return doc


def merge_runs(runs: list[dict], paths: list) -> dict:
    """One run from several chunks of the same GPU (blocks, throughput, kernels).

    CI runs the chunks as separate pytest sessions; the report shows them together.
    A test present in two files keeps the later file's result.
    """
    first = runs[0]
    for run, path in zip(runs[1:], paths[1:]):
        if run["slug"] != first["slug"]:
            raise _fail(path, f"slug {run['slug']!r} differs from {paths[0]}'s {first['slug']!r}")
    tests: dict = {}
    for run in runs:
        tests.update(run["tests"])
    times = [r.get(k) for r in runs for k in ("started", "finished") if isinstance(r.get(k), str)]
    return {
        **first,
        "tests": tests,
        "versions": {k: v for r in runs for k, v in r["versions"].items()},
        "started": min(times) if times else None,
        "finished": max(times) if times else None,
        "interrupted": any(r.get("interrupted") for r in runs),
    }


def setup_slug(run: dict) -> str:
    """The setup a run measured: the slug every test carries (h200x2 for a two-GPU machine's TP tests),
    else the device's slug."""
    slugs = {e.get("slug") for e in run["tests"].values()}
    return slugs.pop() if len(slugs) == 1 and None not in slugs else run["slug"]
