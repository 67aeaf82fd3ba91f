"""The suite's pytest plugin, registered as a pytest11 entry point so its options are known however pytest
is started. Hooks of a few lines each, delegating to one SuiteSession (session.py); options in options.py,
fixtures in fixtures.py, the device grid of the test ids in targets.py."""

from __future__ import annotations

import pytest

from pagedbench.plugin import faults, options
from pagedbench.plugin.fixtures import (  # noqa: F401 (pytest finds a plugin's fixtures among its names)
    device,
    engine_pool,
    has_weights,
    load_format,
    metrics,
    model_dir,
    model_shape,
    run_side,
    session_store,
    sizes,
    start_engine,
    target,
)
from pagedbench.plugin.session import SuiteSession

SESSION = pytest.StashKey[SuiteSession]()


def pytest_addoption(parser):
    options.add_options(parser)


def pytest_configure(config):
    options.check_options(config)
    config.stash[SESSION] = SuiteSession(config)


def pytest_generate_tests(metafunc):
    metafunc.config.stash[SESSION].generate(metafunc)


def pytest_collection_modifyitems(config, items):
    config.stash[SESSION].deselect(items)
    config.stash[SESSION].select(items)
    config.stash[SESSION].order(items)


def pytest_report_collectionfinish(config):
    return config.stash[SESSION].selection_note


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    try:
        result = yield
        if problem := item.config.stash[SESSION].judge(item):
            pytest.fail(problem, pytrace=False)
    except KeyboardInterrupt:
        # pytest re-raises it before makereport: drop the benchmark's empty stats so the run JSON is saved.
        item.config.stash[SESSION].drop_unmeasured(item)
        raise
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    item.config.stash[SESSION].record(item, report)
    return report


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info.update(config.stash[SESSION].gate.machine_info())


def pytest_benchmark_update_json(config, benchmarks, output_json):
    faults.drop_contaminated(output_json)  # never this machine's stored timings


def pytest_unconfigure(config):
    faults.uninstall_sigterm()


def pytest_sessionfinish(session, exitstatus):
    session.config.stash[SESSION].finish(exitstatus)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    config.stash[SESSION].summary(terminalreporter)

