"""A stand-in `vllm serve` for the suite's process handling: a few lines of Python that answer /health
on the port the suite gives them, started by the suite's own server code, no vLLM. Each test puts in
front of the server the prelude that makes it the server it needs (a crash, a child that outlives a
careless stop, last words in its log), and may add request handlers."""

from __future__ import annotations

import dataclasses
import sys
import textwrap

from pagedbench.engines import vllm_server as srv

_HEAD = "import http.server, os, signal, subprocess, sys\nport = int(sys.argv[1])\n"
_SERVE = '''
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
{methods}
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
'''


def script(prelude: str = "", methods: str = "") -> str:
    """Python source of a stand-in: `port` from argv[1] (argv[2:] are the test's own), the prelude,
    then the /health server with the extra handler methods."""
    return _HEAD + textwrap.dedent(prelude) + _SERVE.format(methods=textwrap.indent(textwrap.dedent(methods), "    "))


@dataclasses.dataclass(frozen=True)
class StandIn(srv.ServerSettings):
    source: str = script()
    args: tuple[str, ...] = ()

    def argv(self, port):
        return [sys.executable, "-c", self.source, str(port), *self.args]


def stand_in(log_path, source: str = script(), *args: str, **settings) -> StandIn:
    settings.setdefault("start_timeout_s", 30)
    return StandIn(model="none", served_name="none", log_path=str(log_path), source=source, args=tuple(args),
                   **settings)
