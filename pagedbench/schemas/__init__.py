"""JSON Schemas (draft 2020-12) of the suite's files, and the one way they are read.

`run.schema.json` (the run JSON), `baseline.schema.json` (baselines/<slug>.json) and
`history.schema.json` (a file of a history folder) are the definition of the formats; the
`jsonschema` library checks them. Every problem is one line: the file, the field as a path
(`tests['t[h100]'].metrics.tok_s.value`) and what is wrong.

Strict JSON has no NaN or Infinity, though Python's json module reads and writes them: a
figure that is not finite is refused with its field named, before the schema is applied.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import cache
from importlib import resources

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource

NAMES = ("metric", "stats", "run", "baseline", "history", "ab")
_BASE = "https://pagedbench.invalid/schemas/"


def schema(name: str) -> dict:
    """The schema document <name>.schema.json shipped with the package."""
    return json.loads(resources.files(__name__).joinpath(f"{name}.schema.json").read_text())


@cache
def validator(name: str) -> Draft202012Validator:
    registry = Registry().with_resources(
        (f"{_BASE}{n}.schema.json", Resource.from_contents(schema(n))) for n in NAMES)
    return Draft202012Validator(schema(name), registry=registry)


def field_path(parts) -> str:
    """A JSON path as a reader writes it: tests['t[h100]'].metrics.tok_s.value, or '(top level)'."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif p.isidentifier():
            out += f".{p}" if out else p
        else:
            out += f"[{p!r}]"
    return out or "(top level)"


def problem(doc, name: str, at: tuple = ()) -> str | None:
    """The most telling schema violation of doc as '<field>: <what is wrong>', or None when it is valid;
    `at` is where doc sits in a larger document."""
    error = best_match(validator(name).iter_errors(doc))
    if error is None:
        return None
    return f"{field_path((*at, *error.absolute_path))}: {error.message}"


class _NotFinite(str):
    """NaN, Infinity or -Infinity as read, kept until its place in the document is known."""


def _not_finite(text: str):
    return _NotFinite(text)


def _float(text: str):
    value = float(text)
    return value if math.isfinite(value) else _NotFinite(text)  # 1e999 reads as inf


def parse_strict(text: str, allowed: Callable[[tuple], bool] = lambda where: False):
    """(document, None) or (None, '<where>: <problem>'): not JSON, or a NaN/Infinity outside the places
    `allowed(path)` accepts (where it becomes a float)."""
    try:
        doc = json.loads(text, parse_constant=_not_finite, parse_float=_float)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
    try:
        return _finite(doc, (), allowed), None
    except _Refused as exc:
        return None, str(exc)


class _Refused(Exception):
    pass


def _finite(node, where: tuple, allowed):
    if isinstance(node, _NotFinite):
        if allowed(where) and node != "NaN":
            return float(node)
        raise _Refused(f"{field_path(where)} is {node}, not a finite number")
    if isinstance(node, dict):
        return {k: _finite(v, (*where, k), allowed) for k, v in node.items()}
    if isinstance(node, list):
        return [_finite(v, (*where, i), allowed) for i, v in enumerate(node)]
    return node
