"""A stand-in for the HTTP side of `vllm serve` in a thread of the test process: the routes the serving
tier uses beyond the OpenAI ones, answering as vLLM does, and a log of what was asked in what order."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

from pagedbench.engines import vllm_server as srv


class FakeVllm:
    def __init__(self):
        self.paths: list[str] = []            # "POST /reset_prefix_cache", "GET /metrics", ... in order
        self.reset_answers: list[tuple[int, dict]] = []   # popped per reset; then 200 {"success": true}
        self.cache_labels: dict[str, str] = {"block_size": "16"}
        self.config: dict | None = None        # None: /server_info not mounted (no dev mode)
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, status: int, body: str, kind: str = "application/json"):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.end_headers()
                self.wfile.write(body.encode())

            def do_GET(self):
                fake.note(f"GET {self.path.split('?')[0]}")
                if self.path == "/metrics":
                    labels = ",".join(f'{k}="{v}"' for k, v in fake.cache_labels.items())
                    self._answer(200, f"vllm:cache_config_info{{{labels}}} 1.0\n", "text/plain")
                elif self.path.startswith("/server_info") and fake.config is not None:
                    self._answer(200, json.dumps({"vllm_config": fake.config, "vllm_env": {}, "system_env": {}}))
                elif self.path == "/health":
                    self._answer(200, "")
                else:
                    self._answer(404, '{"detail": "Not Found"}')

            def do_POST(self):
                fake.note(f"POST {self.path}")
                status, body = fake.reset_answers.pop(0) if fake.reset_answers else (200, {"success": True})
                self._answer(status, json.dumps(body))

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def note(self, what: str) -> None:
        with self._lock:
            self.paths.append(what)

    def server(self, log_dir: Path, kind: str = "cpu") -> srv.VllmServer:
        """A VllmServer object talking to this stand-in (no process of its own)."""
        settings = srv.ServerSettings(model="m", served_name="m", kind=kind)
        server = srv.VllmServer(settings, Path(log_dir) / "server.log", start_timeout_s=5)
        server.port = self.port
        return server

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
