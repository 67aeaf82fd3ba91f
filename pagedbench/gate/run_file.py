"""The run JSON (`--metrics-json`): one session's results, written by the gate, read by the tools.

This module is the format's only owner: what the gate writes at session end and what
`report`, `readme`, `baseline` and `history` accept both come from here; the format is
pagedbench/schemas/run.schema.json (history.schema.json for a history folder's files). Baseline files
(baselines/<slug>.json) are another format, with their own baseline.SCHEMA_VERSION.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from pagedbench import schemas
from pagedbench.errors import PagedBenchError

RUN_SCHEMA_VERSION = 1
OUTCOMES = ("passed", "failed", "skipped")


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


def validate_run(doc, path="<run>", schema: str = "run") -> dict:
    """Check a run document against run.schema.json (or history.schema.json); every problem names the
    file and the field."""
    version = doc.get("schema_version") if isinstance(doc, dict) else None
    if type(version) is not int or version != RUN_SCHEMA_VERSION:  # true and 1.0 == 1 in Python and in JSON Schema
        raise _fail(path, f"schema_version is {version!r}, this report reads {RUN_SCHEMA_VERSION}")
    if why := schemas.problem(doc, schema):
        raise _fail(path, why)
    return doc


def _infinity_allowed(where: tuple) -> bool:
    # An offered request rate of "all at once" is Infinity in a test's params, and so is the change
    # of a figure whose baseline was 0.
    return len(where) >= 3 and where[0] == "tests" and (where[2] == "params" or where[-1] == "change")


def load_run(path: str | Path, schema: str = "run") -> dict:
    """A validated run document; PagedBenchError naming the file when it is unusable."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot read ({exc})") from exc
    doc, why = schemas.parse_strict(text, _infinity_allowed)
    if why:
        raise _fail(path, why)
    doc = validate_run(doc, path, schema)
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
