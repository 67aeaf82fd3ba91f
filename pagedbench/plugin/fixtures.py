"""The fixtures a benchmark asks for: the device and its case (`target`), the model, engines, metrics."""

from __future__ import annotations

import pytest

from pagedbench.engines import overrides, side_process
from pagedbench.engines.pool import EnginePool
from pagedbench.errors import PagedBenchError, StartError
from pagedbench.meters.device_timing import gpu_memory_used_gib
from pagedbench.metrics.session_store import SessionStore
from pagedbench.metrics.settings import describe
from pagedbench.plugin import targets
from pagedbench.workloads import tier_sizes
from pagedbench.workloads.model import load_shape, resolve_model_dir


def suite_session(config):
    from pagedbench.plugin import SESSION

    return config.stash[SESSION]


@pytest.fixture(scope="session")
def device(request):
    return suite_session(request.config).device


@pytest.fixture
def target(request, device):
    if why := targets.skip_reason(request.param, device):
        pytest.skip(why)
    return request.param


@pytest.fixture
def sizes(target):
    return tier_sizes.sizes_for(target.kind)


@pytest.fixture(scope="session")
def model_dir(request, device):
    """Shipped config (random weights) by default; --model PATH for a real checkpoint."""
    chosen = request.config.option.model
    name = chosen or tier_sizes.sizes_for("gpu" if device.is_gpu else "cpu").model
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


STARTS = pytest.StashKey[list]()


def _note_start(request, settings, resolved) -> None:
    """What this test measured with (metrics.settings): the gate checks it against the baseline's."""
    request.node.stash.setdefault(STARTS, []).append(describe(settings, resolved))


@pytest.fixture
def start_engine(engine_pool, request):
    """get(settings, beside=()) -> a live engine or server; a refused block size or layout skips with vLLM's
    reason. `beside`: settings to start at the same time and keep idle for a later test (EnginePool.get)."""
    changed = request.config.option.engine_override

    def get(settings, beside=()):
        settings = overrides.apply(settings, changed)
        beside = tuple(overrides.apply(b, changed) for b in beside)
        engine = _started(settings, lambda: engine_pool.get(settings, beside))
        effective = getattr(engine, "effective", None)
        _note_start(request, settings, effective() if callable(effective) else None)
        return engine
    return get


@pytest.fixture
def run_side(engine_pool, tmp_path, request):
    """run(settings, workload, rounds, check) -> side_process.SideResult: the engine in a process of its own,
    once this process's engine has given the device back; skips and fails as start_engine does."""
    def run(settings, workload, rounds, check):
        settings = overrides.apply(settings, request.config.option.engine_override)

        def side():
            engine_pool.close()
            return side_process.run_side(settings, workload, rounds, check, tmp_path)
        result = _started(settings, side)
        _note_start(request, settings, result.effective)
        return result
    return run


@pytest.fixture
def metrics(request, target):
    """Recorder for this test's metrics; the gate samples the machine now (idle, before the timed
    work) and compares the metrics once the test body returns."""
    return suite_session(request.config).recorder(request, target.slug)
