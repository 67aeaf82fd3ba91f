"""Wiring only: options, fixtures and hooks. The measuring code lives in pagedbench/."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from pagedbench import gate as gate_mod
from pagedbench import kv, plan, targets
from pagedbench.errors import PagedBenchError
from pagedbench.gpu import current_device, gpu_health, software_versions
from pagedbench.meters import gpu_memory_used_gib
from pagedbench.pool import EnginePool

ROOT = Path(__file__).parent


def pytest_addoption(parser):
    g = parser.getgroup("pagedbench")
    g.addoption("--model", default=None, metavar="PATH",
                help="local HF checkpoint folder (real weights + tokenizer); default: the shipped "
                     "Llama-3.1-8B config (tiny Llama on CPU) with random weights")
    g.addoption("--dataset", default=None, metavar="PATH", help="ShareGPT-format JSON for the variable-length workload")
    g.addoption("--baselines-dir", default=str(ROOT / "baselines"), metavar="DIR")
    g.addoption("--update-baselines", action="store_true", help="merge this run's metrics into baselines/<gpu>.json")
    g.addoption("--require-baseline", action="store_true", help="fail tests that have no baseline for this GPU")
    g.addoption("--strict-versions", action="store_true", help="fail when software versions differ from the baseline's")
    g.addoption("--tolerance-k", type=float, default=gate_mod.bl.DEFAULT_K,
                help="tolerance = max(metric floor, K x spread) (default %(default)s)")
    g.addoption("--strict-gpu", action="store_true",
                help="fail when another process uses the GPU or its clocks are throttled")
    g.addoption("--metrics-json", default=None, metavar="PATH",
                help="where to write this run's metrics (run JSON); default runs/<gpu>-last.json")


def pytest_configure(config):
    for name, what in (("blocks", "vLLM block pool and KV arithmetic"), ("throughput", "end-to-end tok/s"),
                       ("kernels", "decode attention kernels"), ("matrix", "per-device parameter grid"),
                       ("gpu_only", "runs on GPUs only"),
                       ("tensor_parallel(n)", "runs on n GPUs of one host; ids carry e.g. h200x2")):
        config.addinivalue_line("markers", f"{name}: {what}")
    device = current_device()
    # Timings per GPU too: `--benchmark-compare` finds the last run of this GPU with no extra flags.
    if config.option.benchmark_storage == "file://./.benchmarks":
        config.option.benchmark_storage = f"file://{Path(config.option.baselines_dir) / device.slug}"
    if config.option.update_baselines and not (config.option.benchmark_save or config.option.benchmark_autosave):
        config.option.benchmark_save = "baseline"
    config._pagedbench_gate = gate_mod.Gate(
        Path(config.option.baselines_dir), {"slug": device.slug, **device.as_dict()}, software_versions(),
        k=config.option.tolerance_k, require_baseline=config.option.require_baseline,
        strict_versions=config.option.strict_versions, update=config.option.update_baselines)
    health = gpu_health() if device.is_gpu else {}
    config._pagedbench_gate.device["health"] = health
    problems = ([f"other processes on the GPU: {health['other_processes']}"] if health.get("other_processes") else []) + \
               ([f"clocks throttled: {', '.join(health['throttle_reasons'])}"] if health.get("throttle_reasons") else [])
    if problems:
        if config.option.strict_gpu:
            raise pytest.UsageError("--strict-gpu: " + "; ".join(problems))
        warnings.warn(pytest.PytestWarning("measurements may be skewed: " + "; ".join(problems)), stacklevel=2)
    try:  # a broken baseline for this machine stops the run before any engine starts
        config._pagedbench_gate.baseline(device.slug)
    except PagedBenchError as exc:
        raise pytest.UsageError(str(exc)) from exc


def pytest_generate_tests(metafunc):
    if "target" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("matrix")
    gpus = targets.known_slugs(Path(metafunc.config.option.baselines_dir), current_device().slug)
    tp = metafunc.definition.get_closest_marker("tensor_parallel")
    names, values, ids = targets.cases(marker.kwargs if marker else {}, gpus,
                                       metafunc.definition.get_closest_marker("gpu_only") is not None or tp is not None,
                                       tp=tp.args[0] if tp else 1)
    metafunc.parametrize(names, values, ids=ids, indirect=["target"])


def pytest_collection_modifyitems(config, items):
    # Group cases that share an engine so each starts once (module, device, block size, caching), and
    # kernel cases that share input tensors so every implementation runs on one set (context, batch, order).
    def key(item):
        p = getattr(item, "callspec", None)
        params = p.params if p else {}
        shape = (params["context"], params.get("batch", 0), params.get("order", "")) if "context" in params else ()
        return (item.fspath.strpath, str(params.get("target", "")), params.get("block_size", 0),
                bool(params.get("prefix_caching", False)), *shape)
    order = {id(it): i for i, it in enumerate(items)}
    items.sort(key=lambda it: (*key(it), order[id(it)]))


# ---- fixtures ------------------------------------------------------------------------

@pytest.fixture(scope="session")
def device():
    return current_device()


@pytest.fixture
def target(request, device):
    t = request.param
    if t.kind == "cpu" and device.is_gpu:
        pytest.skip(f"CPU case; this machine runs the {device.slug} cases")
    if t.kind == "gpu":
        if not device.is_gpu:
            pytest.skip(f"needs a {t.slug} GPU; this machine has no CUDA device")
        if device.multi_slug(t.gpus) != t.slug or device.count < t.gpus:
            pytest.skip(f"{t.slug} case; this machine is {device.multi_slug(device.count)}")
    return t


@pytest.fixture
def sizes(target):
    return plan.sizes_for(target.kind)


@pytest.fixture(scope="session")
def model_dir(request, device):
    """Shipped config (random weights) by default; --model PATH for a real checkpoint."""
    chosen = request.config.option.model
    name = chosen or (plan.GPU.model if device.is_gpu else plan.CPU.model)
    return kv.resolve_model_dir(name)


@pytest.fixture(scope="session")
def model_shape(model_dir):
    return kv.load_shape(model_dir)


@pytest.fixture(scope="session")
def has_weights(request):
    return request.config.option.model is not None


@pytest.fixture(scope="session")
def engine_pool(device):
    pool = EnginePool(memory_probe=gpu_memory_used_gib if device.is_gpu else None)
    yield pool
    pool.close()


@pytest.fixture
def start_engine(engine_pool):
    """get(settings) -> a live engine; a refused block size or layout skips with vLLM's reason."""
    from pagedbench.vllm_engine import EngineStartError

    def get(settings):
        try:
            return engine_pool.get(settings)
        except EngineStartError as exc:
            if exc.unsupported:
                pytest.skip(f"vLLM refuses {settings.label()}: {exc}")
            pytest.fail(f"vLLM engine failed to start ({settings.label()}): {exc}", pytrace=False)
        except PagedBenchError as exc:
            pytest.fail(str(exc), pytrace=False)
    return get


@pytest.fixture
def metrics(request, target):
    """Recorder for this test's metrics; the gate compares them once the test body returns."""
    bench = request.getfixturevalue("benchmark") if "benchmark" in request.fixturenames else None
    rec = gate_mod.Recorder(request.node.nodeid, target.slug, bench)
    request.node._pagedbench_recorder = rec
    return rec


# ---- hooks ---------------------------------------------------------------------------

@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    rec = getattr(item, "_pagedbench_recorder", None)
    if rec is not None and rec.metrics:
        problem = item.config._pagedbench_gate.check(rec)
        if problem:
            pytest.fail(problem, pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        item.config._pagedbench_gate.record_outcome(item.nodeid, report.outcome)
    return report


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["gpu"] = {**current_device().as_dict(), "health": gpu_health() if current_device().is_gpu else {}}
    machine_info["software"] = software_versions()


def pytest_sessionfinish(session, exitstatus):
    # Runs on Ctrl-C too: what finished is written, the run JSON says it was interrupted.
    gate = session.config._pagedbench_gate
    if not gate.results:
        return
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    out = session.config.option.metrics_json or ROOT / "runs" / f"{current_device().slug}-last.json"
    gate.write_run(Path(out), interrupted)
    gate.run_path = out
    if session.config.option.update_baselines:
        gate.written = gate.write_baselines()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    gate = config._pagedbench_gate
    lines = gate.summary_lines()
    if lines:
        terminalreporter.section("pagedbench: metrics against baselines")
        for line in lines:
            terminalreporter.write_line(line)
    if getattr(gate, "run_path", None):
        terminalreporter.write_line(f"run metrics: {gate.run_path}  (report: python -m pagedbench report {gate.run_path})")
    for path in getattr(gate, "written", []):
        terminalreporter.write_line(f"baseline written: {path}")


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
