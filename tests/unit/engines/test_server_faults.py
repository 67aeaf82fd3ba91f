"""The serving tier's process handling, on a stand-in server (a few lines of Python, no vLLM):
a start that fails quotes the log, a taken port is retried, stopping takes the whole process group."""

import http.server
import sys
import threading

import pytest
import standins
from standins import script

from pagedbench.engines import vllm_server as srv
from pagedbench.workloads.serving_mixes import parse_rates

# Serves /health on the port it is given; spawns a child that would outlive a careless stop.
STAND_IN = script("""
    if sys.argv[2] == "crash":
        print("ValueError: No valid attention backend found for block_size 8", flush=True)
        sys.exit(1)
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
""")


def stand_in(tmp_path, mode="ok"):
    return standins.stand_in(tmp_path / "server.log", STAND_IN, mode)


def test_stop_takes_the_whole_group(tmp_path):
    server = stand_in(tmp_path).start()
    pgid = server.proc.pid
    assert server.alive()
    server.stop()
    assert not srv.group_alive(pgid), "the stand-in's child outlived the stop"
    assert not server.alive()


def test_a_failed_start_quotes_the_log_and_marks_a_refusal(tmp_path):
    with pytest.raises(srv.ServerError) as err:
        stand_in(tmp_path, "crash").start()
    assert "No valid attention backend" in str(err.value) and "last lines of the server log" in str(err.value)
    assert err.value.unsupported  # vLLM refusing the settings: the tests skip quoting it


def test_a_taken_port_is_not_an_error(tmp_path, monkeypatch):
    busy = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=busy.serve_forever, daemon=True).start()
    ports = iter([busy.server_address[1], srv.free_port()])  # the first port offered is taken
    monkeypatch.setattr(srv, "free_port", lambda: next(ports))
    # The stand-in cannot bind the taken port: it fails with "Address already in use" and the next try starts.
    server = stand_in(tmp_path).start()
    try:
        assert server.port != busy.server_address[1] and server.alive()
    finally:
        server.stop()
        busy.shutdown()


@pytest.mark.parametrize("text", ["1,fast", "0,4", "-1", "4,4", "nan", ""])
def test_bad_serving_rates_are_refused(text):
    with pytest.raises(ValueError, match="--serving-rates"):
        parse_rates(text)


def test_serving_rates_parse():
    assert parse_rates("inf, 16,1,4") == (1.0, 4.0, 16.0, float("inf"))


def test_a_bad_rate_stops_the_run_before_any_server(tmp_path):
    import subprocess
    from pathlib import Path

    root = Path(__file__).parent.parent
    out = subprocess.run([sys.executable, "-m", "pytest", "--serving-rates=1,fast", "--collect-only", "-q",
                          "-p", "no:cacheprovider", str(root / "tests" / "test_kv_arithmetic.py")],
                         capture_output=True, text=True, cwd=root, timeout=120)
    assert out.returncode == 4, out.stdout + out.stderr  # pytest's usage error
    assert "'fast' is not a number" in out.stderr
