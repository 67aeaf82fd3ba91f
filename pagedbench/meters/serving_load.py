"""Load on a live server from vLLM's own generator (`vllm bench serve`), with /metrics sampled.

vLLM's `vllm.benchmarks.serve` is what its CI and dashboards publish: Poisson arrivals,
streamed completions, TTFT/TPOT/ITL/E2E percentiles and goodput. It runs here in-process
(its `main_async` on its own argument parser) so the figures are vLLM's, computed by vLLM's
code; this module only chooses the request mix and bounds the wall time. While the load
runs, the server's Prometheus metrics are read every `SCRAPE_S` for the KV-cache usage and
preemptions that the block-pool tier shows in blocks. Each load starts on an emptied prefix
cache (run_load), so a load sent again with the same seed is not served from the last one's.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import threading
from dataclasses import dataclass

from pagedbench.engines.vllm_server import VllmServer
from pagedbench.errors import PagedBenchError

PERCENTILES = (50, 90, 99)
LATENCIES = ("ttft", "tpot", "itl", "e2el")
SCRAPE_S = 0.25


@dataclass(frozen=True)
class Shape:
    """A request mix of vLLM's random dataset: lengths uniform in [len·(1-ratio), len·(1+ratio)]."""

    name: str
    input_len: int
    output_len: int
    range_ratio: float = 0.0
    prefix_len: int = 0   # tokens every request shares ahead of its own


@dataclass(frozen=True)
class Load:
    shape: Shape
    num_prompts: int
    request_rate: float = math.inf      # Poisson arrivals per second; inf sends all at once
    max_concurrency: int | None = None
    seed: int = 0                        # prompts and arrival times; the same in every run of a case

    def argv(self, server: VllmServer, tokenizer: str, slo: dict[str, float]) -> list[str]:
        s = self.shape
        args = ["--backend", "vllm", "--base-url", server.base_url, "--endpoint", "/v1/completions",
                "--model", server.settings.served_name, "--tokenizer", tokenizer,
                "--dataset-name", "random", "--random-input-len", str(s.input_len),
                "--random-output-len", str(s.output_len), "--random-range-ratio", str(s.range_ratio),
                "--random-prefix-len", str(s.prefix_len), "--num-prompts", str(self.num_prompts),
                "--request-rate", "inf" if math.isinf(self.request_rate) else str(self.request_rate),
                "--seed", str(self.seed), "--ignore-eos", "--disable-tqdm",
                "--percentile-metrics", ",".join(LATENCIES),
                "--metric-percentiles", ",".join(map(str, PERCENTILES)),
                "--goodput", *(f"{k}:{v:g}" for k, v in slo.items()),
                "--ready-check-timeout-sec", "0",
                "--save-detailed"]  # keeps the per-request times (nothing is written without --save-result)
        if self.max_concurrency is not None:
            args += ["--max-concurrency", str(self.max_concurrency)]
        return args


class MetricsSampler:
    """Reads the server's /metrics while a load runs: peaks of gauges, growth of counters."""

    def __init__(self, server: VllmServer):
        self.server = server
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self) -> None:
        m = self.server.metrics()
        if m:
            self.first = self.first or m
            self.last = m
            for k, v in m.items():
                self.peak[k] = max(v, self.peak.get(k, v))

    def _run(self) -> None:
        while True:
            self._read()
            if self._stop.wait(SCRAPE_S):
                return

    def __enter__(self) -> MetricsSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._read()  # the counters once the last request is done

    def grew(self, name: str) -> float:
        return self.last.get(name, 0.0) - self.first.get(name, 0.0)


_preload: threading.Thread | None = None


def preload_generator() -> None:
    """Import vLLM's load generator on a daemon thread, once: ~14 s on a slow 2-core CPU, spent while a
    server starts (this process only polls /health then) instead of before the first load. A failed
    import is raised by run_load's own import."""
    global _preload
    if _preload is None:
        _preload = threading.Thread(target=_import_generator, daemon=True, name="import vllm.benchmarks.serve")
        _preload.start()


def _import_generator() -> None:
    with contextlib.suppress(Exception):
        import vllm.benchmarks.serve  # noqa: F401


def run_load(server: VllmServer, tokenizer: str, load: Load, slo: dict[str, float], timeout_s: float) -> dict:
    """vLLM's result dict for one load, plus the server-side figures under `server.*`.

    The server's prefix cache is emptied first, as `vllm bench sweep` does between runs: a load of the same
    seed (a re-measurement, the next run on the same server) sends the same prompts, which would otherwise
    be served from the cache of the last one. Hits within the load (a shared system prompt) still count."""
    server.reset_prefix_cache()
    what = f"load {load.shape.name} at {load.request_rate} req/s"
    with MetricsSampler(server) as sampler:
        try:
            result, log = generate(load.argv(server, tokenizer, slo), timeout_s)
        except TimeoutError as exc:
            raise server.crashed(what) or PagedBenchError(f"{what} did not finish in {timeout_s:.0f} s") from exc
        except Exception:
            # A dead server shows as the client's connection errors: the server's own log says why.
            if crash := server.crashed(what, wait_s=5.0):
                raise crash from None
            raise
    if crash := server.crashed(what):
        raise crash
    if result.get("failed") or result.get("completed", 0) < load.num_prompts:
        errors = [e for e in result.get("errors", []) if e][:3]
        raise PagedBenchError(f"{result.get('failed', '?')} of {load.num_prompts} requests failed: {errors}")
    result["server.kv_cache_usage_peak"] = sampler.peak.get("vllm:kv_cache_usage_perc", math.nan)
    result["server.running_peak"] = sampler.peak.get("vllm:num_requests_running", math.nan)
    result["server.preemptions"] = sampler.grew("vllm:num_preemptions_total")
    result["server.prefix_cache_queries"] = sampler.grew("vllm:prefix_cache_queries_total")
    result["server.prefix_cache_hits"] = sampler.grew("vllm:prefix_cache_hits_total")
    result["generator_log"] = log
    return result


def generate(argv: list[str], timeout_s: float) -> tuple[dict, str]:
    """vLLM's `vllm bench serve` in this process on `argv`: (its result dict, what it printed)."""
    from vllm.benchmarks import serve as vllm_serve
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser()
    vllm_serve.add_cli_args(parser)
    args = parser.parse_args(argv)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        result = asyncio.run(asyncio.wait_for(vllm_serve.main_async(args), timeout_s))
    return result, log.getvalue()


def max_in_flight(result: dict) -> int:
    """Most requests open at one instant, from each request's start and its last token.

    (vLLM's own `max_concurrent_requests` counts requests active in the same one-second bucket.)"""
    events = []
    for start, ttft, itl in zip(result["start_times"], result["ttfts"], result["itls"]):
        events += [(start, 1), (start + ttft + sum(itl), -1)]
    level = peak = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):  # an end before a start at the same instant
        level += step
        peak = max(peak, level)
    return peak
