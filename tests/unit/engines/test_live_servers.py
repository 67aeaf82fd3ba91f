"""The session's registry of running servers: what stop_all() stops, and that nothing starts after it."""

import dataclasses
import sys
import threading
import time

import pytest

from pagedbench.engines import vllm_server as srv
from pagedbench.engines.live_servers import LiveServers

STAND_IN = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


@dataclasses.dataclass(frozen=True)
class StandIn(srv.ServerSettings):
    def argv(self, port):
        return [sys.executable, "-c", STAND_IN, str(port)]


class Slow:
    """Takes `seconds` to stop, and says when it did."""

    def __init__(self, seconds):
        self.seconds, self.stopped = seconds, threading.Event()

    def stop(self, grace_s):
        time.sleep(self.seconds)
        self.stopped.set()


def test_stop_all_stops_every_server_in_one_grace_period():
    live = LiveServers()
    servers = [Slow(0.5) for _ in range(4)]
    for s in servers:
        live.add(s)
    t0 = time.monotonic()
    live.stop_all(1.0)
    assert all(s.stopped.is_set() for s in servers)
    assert time.monotonic() - t0 < 4 * 0.5  # in parallel, not one after the other
    assert live.stopping


def test_a_session_registry_stacks_over_the_one_it_was_started_in():
    outer_before = LiveServers.active()
    inner = LiveServers().activate()
    assert LiveServers.active() is inner
    inner.deactivate()
    assert LiveServers.active() is outer_before


def test_a_started_server_is_in_the_registry_until_stopped_and_none_starts_after_stop_all(tmp_path):
    live = LiveServers()
    settings = StandIn(model="none", served_name="none", log_path=str(tmp_path / "s.log"), start_timeout_s=60)
    server = srv.VllmServer(settings, settings.log_path, settings.start_timeout_s, live=live).start()
    assert len(live) == 1
    server.stop(5.0)
    assert len(live) == 0
    again = srv.VllmServer(settings, settings.log_path, settings.start_timeout_s, live=live).start()
    pid = again.proc.pid
    live.stop_all(5.0)
    assert again.proc is None and not srv.group_alive(pid) and len(live) == 0
    with pytest.raises(srv.ServerError, match="session is ending"):
        srv.VllmServer(settings, settings.log_path, settings.start_timeout_s, live=live).start()
