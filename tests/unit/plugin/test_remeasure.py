"""The one private touch of pytest-benchmark (pagedbench.plugin.remeasure) holds for the installed version."""

import inspect

from pytest_benchmark.fixture import BenchmarkFixture
from pytest_benchmark.session import BenchmarkSession

from pagedbench.plugin.remeasure import CHECKED, installed_version, is_checked


def test_installed_pytest_benchmark_is_a_version_remeasure_was_checked_against():
    version = installed_version()
    assert is_checked(version), (
        f"pytest-benchmark {version} is installed, but pagedbench/plugin/remeasure.py was checked against "
        f"{', '.join(CHECKED)} only: read its BenchmarkFixture (_mode, stats) and BenchmarkSession (benchmarks), "
        "then add the version to CHECKED")


def test_the_private_state_remeasure_resets_is_where_it_was():
    fixture_init = inspect.getsource(BenchmarkFixture.__init__)
    assert "self._mode = None" in fixture_init and "self.stats = None" in fixture_init
    assert "self.benchmarks = []" in inspect.getsource(BenchmarkSession.__init__)


def test_a_version_outside_the_checked_range_is_refused():
    assert not is_checked("4.0.0") and not is_checked("6.0.0") and is_checked(f"{CHECKED[-1]}.9")
