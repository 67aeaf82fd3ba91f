"""The suite's pytest plugin: options, fixtures and hooks (wiring only; the measuring code lives in the
other subpackages). Registered as a pytest11 entry point, so its options are known wherever pytest starts."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from pagedbench.cli.numbers import non_negative_int, positive_float
from pagedbench.device import Device, current_device
from pagedbench.engines import side_process as engine_side
from pagedbench.engines.pool import EnginePool
from pagedbench.errors import PagedBenchError, StartError
from pagedbench.gate import stored_timings
from pagedbench.gate import tolerance as tol
from pagedbench.gate.gate import Gate, Options
from pagedbench.meters import machine_health as health
from pagedbench.meters.device_timing import drop_unmeasured, gpu_memory_used_gib
from pagedbench.metrics.recorder import Recorder
from pagedbench.metrics.session_store import SessionStore
from pagedbench.plugin import checks, faults, targets
from pagedbench.workloads import tier_sizes as tiers
from pagedbench.workloads.model import load_shape, resolve_model_dir
from pagedbench.workloads.serving_mixes import parse_rates

GATE = pytest.StashKey[Gate]()
DEVICE = pytest.StashKey[Device]()
RECORDER = pytest.StashKey[Recorder]()
MERGED_TIMINGS = pytest.StashKey[tuple]()


def pytest_addoption(parser):
    g = parser.getgroup("pagedbench")
    g.addoption("--model", default=None, metavar="PATH",
                help="local HF checkpoint folder (real weights + tokenizer); default: the shipped "
                     "Llama-3.1-8B config (tiny Llama on CPU) with random weights")
    g.addoption("--dataset", default=None, metavar="PATH", help="ShareGPT-format JSON for the variable-length workload")
    g.addoption("--baselines-dir", default=None, metavar="DIR", help="default: <rootdir>/baselines")
    g.addoption("--update-baselines", action="store_true", help="merge this run's metrics into baselines/<gpu>.json")
    g.addoption("--require-baseline", action="store_true", help="fail tests that have no baseline for this GPU")
    g.addoption("--strict-versions", action="store_true", help="fail when software versions differ from the baseline's")
    g.addoption("--tolerance-k", type=positive_float, default=tol.K,
                help=f"tolerance = max(metric floor, K x spread within a run, {tol.K_RUN} x run-to-run spread) "
                     "(default %(default)s)")
    g.addoption("--confirm-runs", type=non_negative_int, default=tol.CONFIRM_RUNS, metavar="N",
                help="re-measure a suspected regression up to N times; it fails only when most measurements "
                     "regress (default %(default)s; 0 fails on the first)")
    g.addoption("--strict-gpu", action="store_true",
                help="fail a test when another process used the GPU or its clocks were throttled around it")
    g.addoption("--trust-machine", action="store_true",
                help="do not sample the machine around timed tests (treat it as idle and ours alone)")
    g.addoption("--serving-rates", default=None, metavar="R,R,...",
                help="request rates (req/s, 'inf' = all at once) of the serving tier's variable mix "
                     "(default: 1,4,16,inf)")
    g.addoption("--serving-logs", default=None, metavar="DIR",
                help="where the serving tier keeps each server's log (default <rootdir>/runs/serving-logs)")
    g.addoption("--metrics-json", default=None, metavar="PATH",
                help="where to write this run's metrics (run JSON); default runs/<gpu>-last.json")


def pytest_configure(config):
    for name, what in (("blocks", "vLLM block pool and KV arithmetic"), ("throughput", "end-to-end tok/s"),
                       ("kernels", "decode attention kernels"),
                       ("serving", "vllm serve under vllm bench serve load"), ("matrix", "per-device parameter grid"),
                       ("settings", "fp8 KV cache, compile modes, prefix caching, long context, start-up"),
                       ("long", "long-context and start-up cases: -m 'not long' keeps a GPU run short"),
                       ("gpu_only", "runs on GPUs only"),
                       ("tensor_parallel(n)", "runs on n GPUs of one host; ids carry e.g. h200x2")):
        config.addinivalue_line("markers", f"{name}: {what}")
    if config.option.serving_rates is not None:  # rejected before any server starts
        try:
            config.option.serving_rates = parse_rates(config.option.serving_rates)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from exc
    # Defaults relative to the rootdir (the checkout pytest runs in), not to where the plugin is installed.
    if config.option.baselines_dir is None:
        config.option.baselines_dir = str(config.rootpath / "baselines")
    if config.option.serving_logs is None:
        config.option.serving_logs = str(config.rootpath / "runs" / "serving-logs")
    device = config.stash[DEVICE] = current_device()
    # Timings per GPU too: `--benchmark-compare` finds the last run of this GPU with no extra flags.
    if config.option.benchmark_storage == "file://./.benchmarks":
        config.option.benchmark_storage = f"file://{Path(config.option.baselines_dir) / device.slug}"
    if config.option.update_baselines and not (config.option.benchmark_save or config.option.benchmark_autosave):
        config.option.benchmark_save = "baseline"
    if not config.option.collectonly:
        try:  # every output path and input store, before any engine starts (plugin/checks.py)
            checks.check_session(config.option, config.rootpath / "runs" / f"{device.slug}-last.json")
        except PagedBenchError as exc:
            raise pytest.UsageError(str(exc)) from exc
    o = config.option
    gate = config.stash[GATE] = Gate.for_device(o.baselines_dir, device, Options(
        k=o.tolerance_k, require_baseline=o.require_baseline, strict_versions=o.strict_versions,
        strict_gpu=o.strict_gpu, update=o.update_baselines, confirm=o.confirm_runs, sample_health=not o.trust_machine,
        metrics_json=Path(o.metrics_json or config.rootpath / "runs" / f"{device.slug}-last.json")))
    if warning := health.startup_warning(device.is_gpu):
        warnings.warn(pytest.PytestWarning(warning), stacklevel=2)
    if not (o.benchmark_skip or o.collectonly):
        gate.start_run()  # a run that stops short leaves no former run's JSON in its place
    try:  # a broken baseline for this machine or --model stops the run before any engine starts
        gate.baseline(device.slug)
        checks.check_model("--model", o.model)
    except PagedBenchError as exc:
        raise pytest.UsageError(str(exc)) from exc
    faults.install_sigterm()  # a cancelled CI job: handled as Ctrl-C, servers stopped, run JSON written
    config.pluginmanager.register(faults.SessionEnd(lambda: config.stash[GATE].opts), "pagedbench.session-end")


def pytest_unconfigure(config):
    faults.uninstall_sigterm()


def pytest_generate_tests(metafunc):
    if "target" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("matrix")
    gpus = targets.known_slugs(Path(metafunc.config.option.baselines_dir), metafunc.config.stash[DEVICE].slug)
    tp = metafunc.definition.get_closest_marker("tensor_parallel")
    names, values, ids = targets.cases(marker.kwargs if marker else {}, gpus,
                                       metafunc.definition.get_closest_marker("gpu_only") is not None or tp is not None,
                                       tp=tp.args[0] if tp else 1)
    metafunc.parametrize(names, values, ids=ids, indirect=["target"])


def pytest_collection_modifyitems(config, items):
    order = {id(it): i for i, it in enumerate(items)}
    params = {id(it): it.callspec.params if hasattr(it, "callspec") else {} for it in items}
    items.sort(key=lambda it: (*targets.run_order(it.fspath.strpath, params[id(it)]), order[id(it)]))


# ---- fixtures ------------------------------------------------------------------------

@pytest.fixture(scope="session")
def device(request):
    return request.config.stash[DEVICE]


@pytest.fixture
def target(request, device):
    if why := targets.skip_reason(request.param, device):
        pytest.skip(why)
    return request.param


@pytest.fixture
def sizes(target):
    return tiers.sizes_for(target.kind)


@pytest.fixture(scope="session")
def model_dir(request, device):
    """Shipped config (random weights) by default; --model PATH for a real checkpoint."""
    chosen = request.config.option.model
    name = chosen or tiers.sizes_for("gpu" if device.is_gpu else "cpu").model
    return resolve_model_dir(name)


@pytest.fixture(scope="session")
def model_shape(model_dir):
    return load_shape(model_dir)


@pytest.fixture(scope="session")
def has_weights(request):
    return request.config.option.model is not None


@pytest.fixture(scope="session")
def load_format(has_weights):
    """vLLM's load format: the checkpoint's weights with --model, random weights otherwise."""
    return "auto" if has_weights else "dummy"


@pytest.fixture(scope="session")
def engine_pool(device):
    pool = EnginePool(memory_probe=gpu_memory_used_gib if device.is_gpu else None)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def session_store():
    """Figures a test hands to a later one (HF tok/s, sweep points, contiguous kernels): see its module."""
    return SessionStore()


def _started(settings, start):
    """start(), or the test skips quoting vLLM where it refuses the settings and fails where it broke."""
    try:
        return start()
    except StartError as exc:
        if exc.unsupported:
            pytest.skip(f"vLLM refuses {settings.label()}: {exc}")
        pytest.fail(f"vLLM failed to start ({settings.label()}): {exc}", pytrace=False)
    except PagedBenchError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def start_engine(engine_pool):
    """get(settings, beside=()) -> a live engine or server; a refused block size or layout skips with vLLM's
    reason. `beside`: settings to start at the same time and keep idle for a later test (EnginePool.get)."""
    return lambda settings, beside=(): _started(settings, lambda: engine_pool.get(settings, beside))


@pytest.fixture
def run_side(engine_pool, tmp_path):
    """run(settings, workload, rounds, check) -> engine_side.SideResult: the engine in a process of its own,
    once this process's engine has given the device back; skips and fails as start_engine does."""
    def run(settings, workload, rounds, check):
        def side():
            engine_pool.close()
            return engine_side.run_side(settings, workload, rounds, check, tmp_path)
        return _started(settings, side)
    return run


@pytest.fixture
def metrics(request, target):
    """Recorder for this test's metrics; the gate samples the machine now (idle, before the timed
    work) and compares the metrics once the test body returns."""
    bench = request.getfixturevalue("benchmark") if "benchmark" in request.fixturenames else None
    rec = Recorder(request.node.nodeid, target.slug, bench)
    request.node.stash[RECORDER] = rec
    request.config.stash[GATE].before(rec)
    return rec


# ---- hooks ---------------------------------------------------------------------------

@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    try:
        result = yield
        rec = item.stash.get(RECORDER, None)
        if rec is not None and rec.metrics:
            problem = item.config.stash[GATE].judge(rec, remeasure=lambda: _remeasure(item))
            if problem:
                pytest.fail(problem, pytrace=False)
    except KeyboardInterrupt:
        # pytest re-raises it before makereport: a benchmark left without a round would crash
        # pytest-benchmark's save at session end and take the run JSON with it (seen on an H200).
        drop_unmeasured(item.funcargs.get("benchmark"))
        raise
    return result


def _remeasure(item):
    """Run the test body again on the same fixtures (engine, inputs) to confirm a suspected regression.
    pytest-benchmark allows one measurement per fixture: its first stats make way for the new ones."""
    bench = item.funcargs.get("benchmark")
    if bench is not None:
        session = item.config._benchmarksession
        if bench.stats in session.benchmarks:
            session.benchmarks.remove(bench.stats)
        bench._mode, bench.stats = None, None
    item.runtest()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.outcome != "passed" and "benchmark" in item.funcargs:
        drop_unmeasured(item.funcargs["benchmark"])
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", None)  # a traceback's own line
        why = (crash or report.longreprtext.strip().split("\n", 1)[0])[:500] if report.failed else ""
        item.config.stash[GATE].record_outcome(item.nodeid, report.outcome, item.stash.get(RECORDER, None), why)
    return report


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info.update(config.stash[GATE].machine_info())


def pytest_benchmark_update_json(config, benchmarks, output_json):
    faults.drop_contaminated(output_json)  # never this machine's stored timings


def pytest_sessionfinish(session, exitstatus):
    # Runs on Ctrl-C too: what finished is written, the run JSON says it was interrupted. Inside
    # faults.SessionEnd (the interrupt's clean-up, the baselines folder's lock) and pytest-benchmark's save.
    config = session.config
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    config.stash[GATE].finish(interrupted=interrupted)
    # pytest-benchmark's own sessionfinish wraps this one, so its save is on disk by now: a chunk
    # saved by --update-baselines joins the GPU's one stored run (what --benchmark-compare reads).
    if config.option.update_baselines and not interrupted:
        if merged := stored_timings.merge_session_save(getattr(config, "_benchmarksession", None)):
            config.stash[MERGED_TIMINGS] = merged


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    config.stash[GATE].display(terminalreporter.write_line, terminalreporter.section)
    if refused := config.stash.get(faults.REFUSED, None):
        terminalreporter.write_line(refused, red=True)
    if merged := config.stash.get(MERGED_TIMINGS, None):
        terminalreporter.write_line(f"pytest-benchmark run merged into {merged[0]} "
                                    f"(removed {', '.join(p.name for p in merged[1])})")


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
