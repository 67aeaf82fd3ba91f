"""The regression gate: each test's metrics against baselines/<slug>.json.

After a test body returns, its metrics are compared (portable ones with every
machine's baseline, machine-bound ones only with a baseline of the same device
identity). A suspected regression is re-measured before it fails: the test fails
only when most of its measurements regress. At session end the gate writes the
run JSON and, with --update-baselines, merges clean results into the baselines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pagedbench.device import Device, software_versions, suite_commit
from pagedbench.gate import baseline_file as bl
from pagedbench.gate import benchmark_compare, run_file, summary, verdicts
from pagedbench.gate import tolerance as tol
from pagedbench.gate.clean_runs import clean_tests
from pagedbench.gate.confirm import _annotate, _regressed
from pagedbench.meters import machine_health as health
from pagedbench.meters import neighbours as watch
from pagedbench.metrics import settings
from pagedbench.metrics.recorder import Recorder


@dataclass
class Options:
    k: float = tol.K
    require_baseline: bool = False
    strict_versions: bool = False
    strict_gpu: bool = False
    update: bool = False
    confirm: int = tol.CONFIRM_RUNS
    # Compare figures measured with other settings asked for (a bisect, where the commit that changed
    # a setting is a suspect like any other), naming the difference on the row.
    compare_other_settings: bool = False
    strict_stale: bool = False  # an improvement beyond STALE x its tolerance fails: the baseline no longer describes the code
    sample_health: bool = True
    metrics_json: Path | None = None  # where finish() writes the run JSON; None: not written


@dataclass
class Gate:
    dir: Path
    device: dict                     # the device dict of this machine, identity included
    versions: dict
    opts: Options = field(default_factory=Options)
    commit: str = ""                 # the suite's own git commit, beside every run in the history
    results: dict[str, dict] = field(default_factory=dict)        # test id -> run-JSON entry
    comparisons: list[bl.Comparison] = field(default_factory=list)
    missing: set[str] = field(default_factory=set)                # slugs with no baseline file
    run_path: Path | None = None
    written: list[Path] = field(default_factory=list)
    skipped_for_baseline: list[str] = field(default_factory=list)

    @classmethod
    def for_device(cls, baselines_dir: Path, device: Device, opts: Options) -> Gate:
        """The gate of this machine: its device, software versions and the suite's commit. On a CPU the
        speed probe joins the device before the first measured test (`before`), so a session that
        measures nothing (the unit tests, a collection) does not pay for it."""
        return cls(Path(baselines_dir), device.as_dict(), software_versions(), opts, commit=suite_commit())

    def __post_init__(self):
        self.dir = Path(self.dir)
        self.identity = bl.device_identity(self.device)
        self.is_gpu = self.device.get("slug", "cpu") != "cpu"
        self.started = run_file.now()
        self._baselines: dict[str, bl.Baseline | None] = {}
        self._watches: dict[str, watch.Watch] = {}  # test id -> the sampler over its timed region

    def baseline(self, slug: str) -> bl.Baseline | None:
        if slug not in self._baselines:
            self._baselines[slug] = bl.load(self.dir / f"{slug}.json")  # BaselineError names file and field
        return self._baselines[slug]

    def version_notes(self, slug: str) -> list[str]:
        base = self.baseline(slug)
        return bl.version_differences(base.versions_for(self.identity), self.versions) if base else []

    # -- one test -----------------------------------------------------------------------
    def before(self, rec: Recorder) -> None:
        """Sample the machine while the suite is idle, just before the timed work, and watch it
        until the work ends (a neighbour that starts mid-test is caught by the watch)."""
        if self.opts.sample_health:
            if not self.is_gpu and "speed_probe" not in self.device:  # once, while the suite is idle
                self.device["speed_probe"] = health.cpu_speed_probe()
            self._sample(rec, health.sample_before(self.is_gpu))
            self.stop_watch(rec)
            self._watches[rec.test_id] = watch.Watch(self.is_gpu).start()

    def _after(self, rec: Recorder) -> None:
        if self.opts.sample_health:
            self.stop_watch(rec)
            self._sample(rec, health.sample_after(self.is_gpu))

    def stop_watch(self, rec: Recorder) -> None:
        """End the watch over rec's timed region: what it saw joins rec's health and problems."""
        w = self._watches.pop(rec.test_id, None)
        if w is None:
            return
        seen, problems = w.stop()
        if seen:
            rec.health.append(seen)
        rec.problems += [p for p in problems if p not in rec.problems]

    def _sample(self, rec: Recorder, sample: health.Sample | None) -> None:
        if sample is not None:
            rec.health.append(sample.as_dict())
            rec.problems += [p for p in health.problems(sample) if p not in rec.problems]

    def compare(self, rec: Recorder) -> list[bl.Comparison]:
        base = self.baseline(rec.slug)
        portable, bound = base.metrics_for(rec.test_id, self.identity) if base else ({}, None)
        machine = base.machine(self.identity) if base else None
        slower = health.speed_mismatch(machine.device.get("speed_probe"), self.device.get("speed_probe")) \
            if machine else None
        reasons: dict[str, str] = {}
        base_settings = machine.settings.get(rec.test_id) if machine else None
        now_settings = rec.params.get("settings", [])
        asked = settings.differences(base_settings, now_settings) if base_settings else []
        if asked and not self.opts.compare_other_settings:
            # Other settings asked for make other figures: neither a regression nor an improvement.
            reasons = {name: "baseline from other settings: " + "; ".join(asked) for name in rec.metrics}
        resolved = settings.differences(base_settings or [], now_settings, "resolved")
        moved = [f"vLLM resolved {'; '.join(resolved)}"] * bool(resolved)
        if asked and self.opts.compare_other_settings:
            moved.insert(0, "other settings asked: " + "; ".join(asked))
        for name, m in rec.metrics.items():
            if m.portable or name in reasons:
                continue
            if rec.problems and not self.is_gpu:
                # A busy shared CPU slows everything by an amount no tolerance can bound: recorded only.
                reasons[name] = "machine busy: " + "; ".join(rec.problems)
            elif bound is None and base and (others := base.identities_with(rec.test_id)):
                reasons[name] = "baseline from " + " / ".join(others)
            elif bound and slower:
                reasons[name] = slower
        rows = [verdicts.flag_stale(c) for c in
                bl.compare(rec.test_id, {**(bound or {}), **portable}, rec.metrics, self.opts.k, reasons)]
        if base and base_settings is None and rec.params.get("settings") and rec.test_id in _known(base, self.identity):
            rows = [verdicts.note(c, "baseline settings not recorded") for c in rows]
        if moved and not reasons:  # a vLLM upgrade's new default: compared, and the row says what moved
            rows = [verdicts.note(c, "; ".join(moved)) for c in rows]
        return [bl.Comparison(c.test_id, c.metric, c.unit, c.direction, c.baseline, c.now, c.tolerance, "unstable",
                              f"modes {bl.fmt(rec.unstable[c.metric][0])} / {bl.fmt(rec.unstable[c.metric][1])} {c.unit}")
                if c.metric in rec.unstable and c.status in ("ok", "regressed", "improved") else c for c in rows]

    def judge(self, rec: Recorder, remeasure: Callable[[], None] | None = None) -> str | None:
        """Compare a finished test, re-measuring a suspected regression; the failure message, if any."""
        self._after(rec)
        rows = self.compare(rec)
        history = [rows]
        if self._confirmable(rows) and remeasure is not None and not self.opts.update:
            for _ in range(self.opts.confirm):
                rec.clear_measurements()
                self.before(rec)
                remeasure()
                self._after(rec)
                history.append(self.compare(rec))
                votes = [_regressed(r) for r in history]
                if votes.count(True) * 2 > 1 + self.opts.confirm or votes.count(False) * 2 > 1 + self.opts.confirm:
                    break  # a majority of the 1 + confirm measurements is in
            rows = _annotate(history, confirmed=sum(map(_regressed, history)) * 2 > len(history))
        self._store(rec, rows, confirmations=len(history) - 1)
        return self._problems(rec, rows)

    def _confirmable(self, rows: list[bl.Comparison]) -> bool:
        # Exact counts need no second look; a machine-bound regression does.
        return any(c.status == "regressed" and c.direction != "equal" for c in rows)

    def _store(self, rec: Recorder, rows: list[bl.Comparison], confirmations: int) -> None:
        entry = self.results.setdefault(rec.test_id, {})
        entry.update(params=rec.params, series=rec.series, slug=rec.slug,
                     metrics={n: asdict(m) for n, m in rec.metrics.items()},
                     unstable={n: list(v) for n, v in rec.unstable.items()},
                     health=rec.health, contaminated=list(rec.problems), remeasured=confirmations,
                     comparisons=[{**asdict(c), "change": c.change} for c in rows])
        if timing := benchmark_compare.timing_stats(rec.benchmark):
            entry["timing_stats"] = timing  # what --benchmark-compare shows, once in the baseline
        if rec.problems and rec.benchmark is not None:
            # a run saved with --benchmark-save leaves this timing out (faults.drop_contaminated)
            rec.benchmark.extra_info["contaminated"] = "; ".join(rec.problems)
        self.comparisons.extend(rows)

    def _problems(self, rec: Recorder, rows: list[bl.Comparison]) -> str | None:
        base = self.baseline(rec.slug)
        path = self.dir / f"{rec.slug}.json"
        out = []
        if base is None:
            self.missing.add(rec.slug)
            if self.opts.require_baseline and not self.opts.update:
                out.append(f"no baseline for {rec.slug} ({path}): "
                           f"record one with `pytest --benchmark-only -k {rec.slug} --update-baselines`")
        elif self.opts.strict_versions and (diffs := self.version_notes(rec.slug)):
            out.append("software differs from the baseline (--strict-versions):\n  " + "\n  ".join(diffs))
        if rec.problems and self.is_gpu and self.opts.strict_gpu:
            out.append("--strict-gpu: the GPU was not ours alone: " + "; ".join(rec.problems))
        if _regressed(rows) and not self.opts.update:
            why = ("\n(the machine was contaminated: " + "; ".join(rec.problems) + ")") if rec.problems else ""
            out.append(f"regression against {path}:\n" + bl.format_table(rows) + why)
        stale = [c for c in rows if verdicts.is_stale(c)]
        if stale and self.opts.strict_stale and not self.opts.update:
            out.append(f"baseline looks stale (--strict-stale): improvements beyond {verdicts.STALE:g}x their "
                       f"tolerance against {path}:\n" + bl.format_table(stale)
                       + "\nre-record it: pytest --benchmark-only --update-baselines (see docs/gate.md)")
        return "\n\n".join(out) or None

    def record_outcome(self, test_id: str, outcome: str, rec: Recorder | None = None, why: str = "") -> None:
        """A test's outcome; one that failed before its metrics were judged (vLLM did not start) is
        kept too, with its reason, so the run file says what failed instead of leaving it out."""
        if rec is not None:
            self.stop_watch(rec)
        if test_id not in self.results and outcome == "failed" and rec is not None:
            self._store(rec, [], confirmations=0)
            self.results[test_id]["failure"] = why
        if test_id in self.results:
            self.results[test_id]["outcome"] = outcome

    # -- session end -----------------------------------------------------------------
    def write_run(self, path: Path, interrupted: bool, incomplete: bool = False) -> None:
        doc = run_file.run_document(self.device, self.identity, self.versions, self.commit, self.started,
                                    interrupted, self.results)
        if incomplete:  # written as the session starts: a run that ends without results is not a former one's
            doc.update(finished=None, incomplete=True)
        self.run_path = run_file.write_run(path, doc)

    def start_run(self) -> None:
        """Replace the run JSON of a former session with this one's, marked incomplete until finish()."""
        if self.opts.metrics_json is not None:
            self.write_run(self.opts.metrics_json, interrupted=False, incomplete=True)
            self._run_started = True

    def write_baselines(self) -> list[Path]:
        """Merge every clean passed test's metrics into baselines/<slug>.json, one atomic write per slug."""
        by_slug, self.skipped_for_baseline = clean_tests(self.results)
        for slug, tests in sorted(by_slug.items()):
            path = self.dir / f"{slug}.json"
            # Read again, not the copy of the session's start: another session may have written it since
            # (the caller holds baseline_file.update_lock). A file we cannot read raises here and is never overwritten.
            self._baselines.pop(slug, None)
            old = self.baseline(slug)
            bl.write_atomic(path, bl.merge(old, slug, self.device, self.versions, tests,
                                           {t: self.results[t].get("params", {}).get("settings") for t in tests},
                                           self.commit, {t: self.results[t].get("timing_stats") for t in tests}))
            self.written.append(path)
        return self.written

    def machine_info(self) -> dict:
        """What a run saved with --benchmark-save keeps beside its timings: the device and the software versions."""
        return {"gpu": self.device, "software": self.versions}

    def finish(self, interrupted: bool) -> None:
        """Session end (Ctrl-C included): the run JSON always, the baselines when asked."""
        if not (self.results or getattr(self, "_run_started", False)) or self.opts.metrics_json is None:
            return
        self.write_run(self.opts.metrics_json, interrupted)
        if self.opts.update and not interrupted:
            self.write_baselines()

    def display(self, write_line: Callable[[str], None], section: Callable[[str], None]) -> None:
        lines = self.summary_lines()
        if lines:
            section("pagedbench: metrics against baselines")
            for line in lines:
                write_line(line)
        if self.run_path:
            write_line(f"run metrics: {self.run_path}  (report: python -m pagedbench report {self.run_path})")
        for path in self.written:
            write_line(f"baseline written: {path} (machine-bound metrics under {self.identity!r})")
        for why in self.skipped_for_baseline:
            write_line(f"not written to the baseline: {why}")

    def summary_lines(self) -> list[str]:
        return summary.lines(self)


def _known(base: bl.Baseline, identity: str) -> set[str]:
    machine = base.machine(identity)
    return set(base.tests) | (set(machine.tests) if machine else set())
