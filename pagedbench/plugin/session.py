"""One object per pytest session holding what the hooks need: this machine's device, the gate, and
what the session started. The hooks in pagedbench.plugin are a few lines each, delegating here."""

from __future__ import annotations

import functools
import shutil
import warnings
from pathlib import Path

import pytest

from pagedbench.device import current_device
from pagedbench.errors import PagedBenchError
from pagedbench.gate import benchmark_compare
from pagedbench.gate.gate import Gate, Options
from pagedbench.meters import machine_health as health
from pagedbench.meters.device_timing import drop_unmeasured
from pagedbench.metrics.recorder import Recorder
from pagedbench.plugin import checks, faults, fixtures, options, selection, targets
from pagedbench.plugin.remeasure import remeasure

RECORDER = pytest.StashKey[Recorder]()


def benchmark_storage_default() -> str:
    """pytest-benchmark's own default for --benchmark-storage, read from where it declares the option."""
    from pytest_benchmark.plugin import add_global_options

    found = {}
    add_global_options(lambda *names, **kw: found.setdefault(names[0], kw.get("default")))
    return found["--benchmark-storage"]


class SuiteSession:
    def __init__(self, config):
        self.config = config
        o = config.option
        self.device = current_device()
        if not o.collectonly:
            try:  # every output path and input store, before any engine starts (checks.py)
                checks.check_session(o, options.metrics_json(config, self.device.slug))
            except PagedBenchError as exc:
                raise pytest.UsageError(str(exc)) from exc
        self.gate = Gate.for_device(o.baselines_dir, self.device, Options(
            k=o.tolerance_k, require_baseline=o.require_baseline, strict_versions=o.strict_versions, strict_stale=o.strict_stale,
            compare_other_settings=o.compare_other_settings,
            strict_gpu=o.strict_gpu, update=o.update_baselines, confirm=o.confirm_runs, sample_health=not o.trust_machine,
            metrics_json=options.metrics_json(config, self.device.slug)))
        self.selection_note: str | None = None
        # A run that stops short leaves no former run's JSON in its place: replaced as the session starts.
        # Plain `pytest` (the unit tests, nothing named) waits for its collection, so that it replaces the
        # JSON of a `pytest --benchmark-only` run only when it measures something itself.
        self.run_deferred = not (o.benchmark_skip or o.collectonly) and selection.default_unit_run(config)
        if not (o.benchmark_skip or o.collectonly or self.run_deferred):
            self.gate.start_run()
        if warning := health.startup_warning(self.device.is_gpu):
            warnings.warn(pytest.PytestWarning(warning), stacklevel=2)
        try:  # a broken baseline for this machine or --model stops the run before any engine starts
            self.gate.baseline(self.device.slug)
            checks.check_model("--model", o.model)
            # Runs before pytest-benchmark's own pytest_configure (trylast) builds its session from the options.
            if benchmark_compare.wants_store(o, benchmark_storage_default()):
                store = benchmark_compare.compare_storage(Path(o.baselines_dir), self.device.slug, self.gate.identity)
                config.add_cleanup(functools.partial(shutil.rmtree, store, ignore_errors=True))
                o.benchmark_storage = f"file://{store}"
        except PagedBenchError as exc:
            raise pytest.UsageError(str(exc)) from exc
        faults.install_sigterm()  # a cancelled CI job: handled as Ctrl-C, servers stopped, run JSON written
        # Around the session end: the interrupt's clean-up and the baselines folder's lock (faults.SessionEnd).
        self.live = faults.live_servers()  # the servers this session starts; SessionEnd stops them
        config.pluginmanager.register(faults.SessionEnd(lambda: self.gate.opts, self.live), "pagedbench.session-end")

    # ---- collection ----------------------------------------------------------------------

    def generate(self, metafunc) -> None:
        if "target" not in metafunc.fixturenames:
            return
        d = metafunc.definition
        marker, tp = d.get_closest_marker("matrix"), d.get_closest_marker("tensor_parallel")
        gpus = targets.known_slugs(Path(self.config.option.baselines_dir), self.device.slug)
        names, values, ids = targets.cases(marker.kwargs if marker else {}, gpus,
                                           d.get_closest_marker("gpu_only") is not None or tp is not None,
                                           tp=tp.args[0] if tp else 1)
        o = self.config.option
        keep = [i for i, v in enumerate(values) if targets.wanted(v[0], self.device, o.pagedbench_device, o.all_devices)]
        # No case here (a GPU-only test on a CPU machine): an empty set, whose one placeholder item
        # deselect() takes out of the run.
        metafunc.parametrize(names, [values[i] for i in keep], ids=[ids[i] for i in keep], indirect=["target"])

    def select(self, items) -> None:
        """Leave out what this command does not run (selection.py): the benchmark tiers under plain `pytest`,
        tests without the benchmark fixture under --benchmark-only."""
        sel = selection.select(self.config, items)
        if sel.left_out:
            self.config.hook.pytest_deselected(items=sel.left_out)
            items[:] = sel.keep
        self.selection_note = sel.note()
        if self.run_deferred and any(map(selection.measures, items)):
            self.gate.start_run()

    def deselect(self, items) -> None:
        """Take out the placeholders of tests with no case for the devices collected, and the CPU cases
        marked slow unless --run-slow."""
        run_slow = self.config.option.run_slow

        def left_out(item) -> bool:
            params = item.callspec.params if hasattr(item, "callspec") else {}
            target = params.get("target")
            if "target" in params and not isinstance(target, targets.Target):
                return True
            return not run_slow and item.get_closest_marker("slow") is not None and (target is None or target.kind == "cpu")

        if gone := [it for it in items if left_out(it)]:
            self.config.hook.pytest_deselected(items=gone)
            items[:] = [it for it in items if not left_out(it)]

    @staticmethod
    def order(items) -> None:
        order = {id(it): i for i, it in enumerate(items)}
        params = {id(it): it.callspec.params if hasattr(it, "callspec") else {} for it in items}
        items.sort(key=lambda it: (*targets.run_order(it.fspath.strpath, params[id(it)]), order[id(it)]))

    # ---- one test ------------------------------------------------------------------------

    def recorder(self, request, slug: str) -> Recorder:
        """Recorder for this test's metrics; the gate samples the machine now (idle, before the timed work)."""
        bench = request.getfixturevalue("benchmark") if "benchmark" in request.fixturenames else None
        rec = Recorder(request.node.nodeid, slug, bench)
        request.node.stash[RECORDER] = rec
        self.gate.before(rec)
        return rec

    def judge(self, item) -> str | None:
        """The gate's verdict once the test body returned: a failure message, or None."""
        rec = item.stash.get(RECORDER, None)
        if rec is None or not rec.metrics:
            return None
        rec.params.setdefault("settings", [])  # recorded even when empty: "started no engine" is a setting too
        for start in item.stash.get(fixtures.STARTS, []):
            rec.started(start)
        return self.gate.judge(rec, remeasure=lambda: remeasure(item))

    @staticmethod
    def drop_unmeasured(item) -> None:
        """A benchmark left without a round would crash pytest-benchmark's save at session end."""
        drop_unmeasured(item.funcargs.get("benchmark"))

    def record(self, item, report) -> None:
        if report.when == "call" and report.outcome != "passed" and "benchmark" in item.funcargs:
            self.drop_unmeasured(item)
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", None)  # a traceback's own line
            why = (crash or report.longreprtext.strip().split("\n", 1)[0])[:500] if report.failed else ""
            self.gate.record_outcome(item.nodeid, report.outcome, item.stash.get(RECORDER, None), why)

    # ---- session end ---------------------------------------------------------------------

    def finish(self, exitstatus) -> None:
        # Runs on Ctrl-C too: what finished is written, the run JSON says it was interrupted.
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        self.gate.finish(interrupted=interrupted)

    def summary(self, terminalreporter) -> None:
        self.gate.display(terminalreporter.write_line, terminalreporter.section)
        if refused := self.config.stash.get(faults.REFUSED, None):
            terminalreporter.write_line(refused, red=True)
