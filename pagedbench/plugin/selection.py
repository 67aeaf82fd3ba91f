"""What each command runs, so that neither prints hundreds of "skipped":

- `pytest` runs the suite's own tests (tests/unit); the benchmark tiers (tests/benchmarks) only when a
  path or node id under tests/benchmarks is named on the command line, or --benchmark-enable is given.
- `pytest --benchmark-only` runs the tests that take the `benchmark` fixture (pytest-benchmark would
  skip every other one); `--benchmark-skip` leaves out those that take it (pytest-benchmark would skip them).

Items left out are deselected (pytest's "N deselected"), with one line saying how to run them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

TIER = Path("tests", "benchmarks")


def uses_benchmark(item) -> bool:
    return "benchmark" in getattr(item, "fixturenames", ())


def measures(item) -> bool:
    """Does the item time something or record metrics (what the run JSON is for)?"""
    return not {"benchmark", "metrics"}.isdisjoint(getattr(item, "fixturenames", ()))


def default_unit_run(config) -> bool:
    """Plain `pytest` with nothing named: the suite's own tests only (testpaths, tiers deselected)."""
    o = config.option
    return not (o.benchmark_only or o.benchmark_enable) and config.args_source != pytest.Config.ArgsSource.ARGS


def named_paths(config, under: Path) -> list[Path]:
    """The paths given on the command line (a node id's file) that lie inside `under`; none when pytest fell
    back to testpaths or the current folder."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return []
    here = config.invocation_params.dir
    found = [(here / arg.split("::", 1)[0]).resolve() for arg in config.args]
    return [p for p in found if p.is_relative_to(under)]


@dataclass
class Selection:
    """Items split into those run and those left out, with why."""
    keep: list = field(default_factory=list)
    not_benchmarks: list = field(default_factory=list)  # --benchmark-only: no benchmark fixture
    benchmarks: list = field(default_factory=list)      # --benchmark-skip: a benchmark fixture
    tier: list = field(default_factory=list)            # plain pytest: under tests/benchmarks, not named

    @property
    def left_out(self) -> list:
        return self.not_benchmarks + self.benchmarks + self.tier

    def note(self) -> str | None:
        """One line: how many were left out, and the command that runs them."""
        parts = []
        if self.tier:
            parts.append(f"{len(self.tier)} benchmark-tier cases deselected: `pytest --benchmark-only` runs them "
                         f"(or name them: `pytest {TIER.as_posix()}/...`)")
        if self.not_benchmarks:
            parts.append(f"{len(self.not_benchmarks)} tests without the benchmark fixture deselected "
                         "(--benchmark-only): `pytest` runs them, `pytest --benchmark-skip tests/benchmarks` the tiers' own")
        if self.benchmarks:
            parts.append(f"{len(self.benchmarks)} benchmarks deselected (--benchmark-skip): "
                         "`pytest --benchmark-only` runs them")
        return "; ".join(parts) or None


def select(config, items) -> Selection:
    o = config.option
    only = o.benchmark_only
    skip = o.benchmark_skip and not only  # pytest-benchmark: --benchmark-only overrides --benchmark-skip
    tier = (config.rootpath / TIER).resolve()
    named = named_paths(config, tier)
    tier_wanted = only or o.benchmark_enable
    sel = Selection()
    for item in items:
        path = Path(item.path).resolve()
        if only and not uses_benchmark(item):
            sel.not_benchmarks.append(item)
        elif not tier_wanted and path.is_relative_to(tier) and not any(path.is_relative_to(p) for p in named):
            sel.tier.append(item)
        elif skip and uses_benchmark(item):
            sel.benchmarks.append(item)
        else:
            sel.keep.append(item)
    return sel
