"""Imports follow the flow: workload -> engine -> meter -> metrics -> gate -> report.

A stage imports from the stages before it and from the shared modules, never from a later one;
the prediction track, beside the flow, imports only workloads and the shared modules, and nothing
on the measuring side imports it (docs/architecture.md). Imports are read from the source with
`ast`, so an import inside a function counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pagedbench"

# The stages in flow order. kernels sits after meters (its harness times through meters/kernel_timing);
# history reads kept runs and draws with the report's helpers, so it comes after report.
FLOW = ("workloads", "engines", "meters", "kernels", "metrics", "gate", "report", "history")
# Modules any stage may import: they import no stage themselves (checked below).
SHARED = ("pagedbench.errors", "pagedbench.device", "pagedbench.trace", "pagedbench.schemas")
# The wiring at the top: they may import anything.
TOP = ("cli", "plugin", "__main__")
PREDICTION = "prediction"
MEASURING = ("workloads", "engines", "meters", "kernels", "metrics", "gate")

# Upward imports that cannot be fixed from here yet, each with why. An entry that no longer occurs fails
# the test, so the list only shrinks.
PENDING = {
    ("pagedbench/metrics/metric.py", "pagedbench.gate.tolerance"):
        "the noise floors' one home is gate/tolerance.py, whose owner moves it below metrics",
    ("pagedbench/metrics/recorder.py", "pagedbench.gate.tolerance"):
        "the noise floors' one home is gate/tolerance.py, whose owner moves it below metrics",
    ("pagedbench/kernels/harness.py", "pagedbench.gate.tolerance"):
        "the kernel floors live in gate/tolerance.py, whose owner moves it below metrics",
    ("pagedbench/workloads/serving_mixes.py", "pagedbench.meters.serving_load"):
        "the request-mix Shape is defined in meters/serving_load.py; it moves to workloads with that module's owner",
}


def imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a pagedbench module in one file; `from a import b` gives a.b
    when a.b is a module, else a."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("pagedbench")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("pagedbench"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                is_module = (root / (sub.replace(".", "/") + ".py")).exists() or (root / sub.replace(".", "/")).is_dir()
                out.append((node.lineno, sub if is_module else node.module))
    return out


def part(module: str) -> str:
    """The stage (or shared/top name) a dotted module or a path under the package belongs to."""
    parts = module.split(".")
    if module in SHARED or parts[:2] == ["pagedbench", "trace"]:
        return "shared"
    return parts[1] if len(parts) > 1 else "__init__"


def violations(package: Path = PACKAGE) -> list[tuple[str, str, str]]:
    """(file, imported module, why it breaks the flow) for every import against the rules."""
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent)
        mod = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        here = part(mod)
        for line, target in imports(path, package.parent):
            there = part(target)
            if there == here or here in TOP or there == "__init__":
                continue
            why = None
            if here == "shared":
                why = "a shared module imports a stage"
            elif there == "shared":
                continue
            elif there == PREDICTION and here in MEASURING:
                why = "the measuring side imports the prediction track"
            elif here == PREDICTION:
                if there != "workloads":
                    why = "the prediction track imports the measuring side beyond workloads"
            elif there in TOP:
                why = f"a stage imports the {there} wiring"
            elif here in FLOW and there in FLOW and FLOW.index(there) > FLOW.index(here):
                why = f"upward: {here} is before {there} in the flow"
            elif here not in FLOW or there not in FLOW + (PREDICTION,):
                why = f"{here} -> {there}: a package this test does not place; add it to FLOW, SHARED or TOP"
            if why:
                found.append((f"{rel.as_posix()}", target, f"{why} (line {line})"))
    return found


def test_no_upward_imports():
    found = violations()
    new = [v for v in found if (v[0], v[1]) not in PENDING]
    assert new == [], "\n".join(f"{f} imports {t}: {why}" for f, t, why in new)


def test_pending_exceptions_still_occur():
    """A pending entry that was fixed is taken off the list, so it cannot hide a new one."""
    found = {(f, t) for f, t, _ in violations()}
    assert sorted(set(PENDING) - found) == []


def test_every_package_is_placed():
    placed = set(FLOW) | set(TOP) | {PREDICTION, "configs", "schemas"}
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert sorted(packages - placed) == []


def test_the_check_catches_what_it_forbids(tmp_path):
    """The rules fire on a tree that breaks each of them (a real upward import, one inside a function,
    the measuring side reaching the prediction track, a shared module importing a stage)."""
    pkg = tmp_path / "pagedbench"
    for sub in ("workloads", "engines", "gate", "prediction", "report"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("from pagedbench.gate import baseline_file\n")
    (pkg / "gate" / "baseline_file.py").write_text("X = 1\n")
    (pkg / "prediction" / "kv_arithmetic.py").write_text("from pagedbench.workloads import model\n")
    (pkg / "workloads" / "model.py").write_text("def f():\n    from pagedbench.engines.pool import Pool\n")
    (pkg / "engines" / "pool.py").write_text("from pagedbench.prediction.kv_arithmetic import blocks\n")
    (pkg / "report" / "tables.py").write_text("from pagedbench.gate.baseline_file import X\nfrom pagedbench import errors\n")
    found = {(f, t) for f, t, _ in violations(pkg)}
    assert found == {("pagedbench/errors.py", "pagedbench.gate.baseline_file"),
                     ("pagedbench/workloads/model.py", "pagedbench.engines.pool"),
                     ("pagedbench/engines/pool.py", "pagedbench.prediction.kv_arithmetic")}
