"""The report every section test reads: one SYNTHETIC run with every section filled, written once."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic_runs import synthetic_run

from pagedbench.report import write_report


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("report")
    path = write_report(synthetic_run(), out)
    return out, path.read_text()
