"""Every bad option value or unusable path is refused as the session starts: one line naming the option,
a non-zero exit, before any test (so before any engine or server) runs; nothing left behind."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pagedbench.errors import PagedBenchError
from pagedbench.gate import baseline_file as bl
from pagedbench.gate import run_file

ROOT = Path(__file__).resolve().parents[3]
# Stands for any benchmark: were it to run, it would write this file.
PROBE_TEST = '''
import os
from pathlib import Path


def test_probe(metrics, target):
    Path(os.environ["RAN_FILE"]).write_text("ran")
    metrics.metric("x", 1.0, "u", "higher")
'''


def session(tmp_path, *args, cwd=None):
    suite = tmp_path / "suite"
    if not suite.exists():
        suite.mkdir()
        (suite / "conftest.py").write_text((ROOT / "conftest.py").read_text())
        (suite / "test_probe.py").write_text(PROBE_TEST)
    ran = tmp_path / "ran"
    ran.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--trust-machine",
            f"--baselines-dir={tmp_path / 'baselines'}", "-k", "cpu", *args]
    if not any(a.startswith("--metrics-json") for a in args):
        argv.append(f"--metrics-json={tmp_path / 'run.json'}")
    if not any(a.startswith("--serving-logs") for a in args):
        argv.append(f"--serving-logs={tmp_path / 'logs'}")
    out = subprocess.run(argv + ["test_probe.py"], cwd=cwd or suite, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "RAN_FILE": str(ran)})
    return out, ran.exists()


def a_file(tmp_path) -> Path:
    f = tmp_path / "a-file"
    f.write_text("not a folder\n")
    return f


@pytest.mark.parametrize("args, says", [
    (lambda t: [f"--metrics-json={t}"], "--metrics-json"),                       # a folder
    (lambda t: [f"--metrics-json={a_file(t)}/run.json"], "--metrics-json"),      # a folder that cannot be made
    (lambda t: [f"--serving-logs={a_file(t)}/logs"], "--serving-logs"),
    (lambda t: ["--model=/nonexistent/ckpt"], "--model"),
    (lambda t: [f"--model={t}"], "--model"),                                     # a folder without config.json
    (lambda t: ["--tolerance-k=inf"], "--tolerance-k"),
    (lambda t: ["--tolerance-k=nan"], "--tolerance-k"),
    (lambda t: ["--tolerance-k=0"], "--tolerance-k"),
    (lambda t: ["--tolerance-k=-1"], "--tolerance-k"),
    (lambda t: ["--confirm-runs=-1"], "--confirm-runs"),
    (lambda t: ["--confirm-runs=1.5"], "--confirm-runs"),
    (lambda t: ["--serving-rates=1,inf,nan"], "--serving-rates"),
    (lambda t: [f"--dataset={t}/none.json"], "--dataset"),
])
def test_refused_at_start_in_one_line(tmp_path, args, says):
    out, ran = session(tmp_path, *args(tmp_path))
    assert out.returncode == pytest.ExitCode.USAGE_ERROR, out.stdout + out.stderr
    assert not ran, "a test ran before the bad input was refused"
    errors = [line for line in out.stderr.splitlines() if says in line]
    assert len(errors) == 1 and "Traceback" not in out.stderr, out.stderr


def test_a_bad_model_leaves_no_former_run_json_as_this_one(tmp_path):
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"schema_version": 1, "slug": "cpu", "tests": {"old": {}}}))  # a former run's
    out, ran = session(tmp_path, "--model=/nonexistent/ckpt")
    assert out.returncode == pytest.ExitCode.USAGE_ERROR and not ran, out.stderr
    doc = json.loads(run.read_text())
    assert doc.get("incomplete") is True and doc["tests"] == {}


def test_the_space_form_of_a_path_option(tmp_path):
    """--model /path (a space, not =) names a folder outside the repository: pytest must not take the path
    for a test path (the options are registered by a plugin pytest always loads, not by a conftest)."""
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text((ROOT / "pagedbench" / "configs" / "tiny-llama" / "config.json").read_text())
    run = tmp_path / "run.json"
    run.write_text("{}")
    # No test path: the path after --model is then the only path-like argument pytest sees at start.
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only",
                          "--model", str(ckpt), "--metrics-json", str(run), "-k", "test_kv_arithmetic"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "unrecognized arguments" not in out.stderr and out.returncode == 0, out.stdout[-2000:] + out.stderr


# ---- small ones --------------------------------------------------------------------------

def test_update_keeps_the_baseline_files_mode(tmp_path):
    path = tmp_path / "cpu.json"
    base = bl.merge(None, "cpu", {"slug": "cpu", "name": "x"}, {}, {})
    bl.write_atomic(path, base)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()  # a new file: as a plain write makes it
    path.chmod(0o644)
    bl.write_atomic(path, base)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600
    assert not list(tmp_path.glob("*.tmp"))


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


@pytest.mark.parametrize("version", [True, 1.0, "1"])
def test_schema_version_must_be_the_integer(version):
    with pytest.raises(PagedBenchError, match="schema_version"):
        bl.parse(json.dumps({"schema_version": version, "slug": "cpu", "versions": {}, "tests": {}, "gpu": {}}))
    if version is True:
        with pytest.raises(PagedBenchError, match="schema_version"):
            run_file.validate_run({"schema_version": True, "slug": "cpu", "gpu": {}, "versions": {}, "tests": {}})


@pytest.mark.parametrize("argv", [["detectors", "--trials", "0"], ["detectors", "--trials", "-3"]])
def test_the_tools_refuse_meaningless_numbers(argv, capsys):
    from pagedbench.cli import main
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and "--trials" in capsys.readouterr().err
