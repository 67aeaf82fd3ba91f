"""The serving tier's loads are the same in every run and every re-measurement, each starts on an emptied
prefix cache, and a percentile is gated only where the load has the requests to estimate it. Stand-ins:
vLLM's load generator replaced by a function that returns a result dict, the server by fake_vllm."""

import importlib.util
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from fake_vllm import FakeVllm

from pagedbench.engines import vllm_server as srv
from pagedbench.gate import tolerance as tol
from pagedbench.meters import serving_load
from pagedbench.metrics.recorder import Recorder
from pagedbench.prediction import kv_arithmetic as kv
from pagedbench.workloads import serving_mixes as mixes

TEST_SERVING = Path(__file__).parents[2] / "benchmarks" / "test_serving.py"


@pytest.fixture
def fake_vllm():
    fake = FakeVllm()
    yield fake
    fake.close()


def result_of(load, caching=True, block=16):
    """What vLLM's generator and the /metrics sampler give for a load, enough for every use in the tier."""
    n, shape = load.num_prompts, load.shape
    hits = kv.prefix_hit_tokens(n - 1, shape.prefix_len, shape.input_len, block) if caching else 0
    r = {f"p{p}_{w}_ms": 10.0 + p / 10 for p in (50, 90, 99) for w in ("ttft", "tpot", "itl", "e2el")}
    r["p50_ttft_ms"] *= 1 if caching else 2              # the GPU's own checks: caching brings the first token sooner
    batch = load.max_concurrency or 1                     # and batching more requests gives more tok/s
    return {**r, "output_throughput": 100.0 * batch, "request_throughput": 10.0, "request_goodput": 10.0,
            "completed": n, "failed": 0, "total_output_tokens": n * shape.output_len,
            "start_times": [0.1 * i for i in range(n)], "ttfts": [0.01] * n, "itls": [[0.01]] * n,
            "server.kv_cache_usage_peak": 0.5, "server.preemptions": 0.0, "server.running_peak": 1.0,
            "server.prefix_cache_queries": n * (shape.prefix_len + shape.input_len), "server.prefix_cache_hits": hits}


def test_every_load_starts_on_an_emptied_prefix_cache(fake_vllm, tmp_path, monkeypatch):
    server = fake_vllm.server(tmp_path)
    monkeypatch.setattr(serving_load, "SCRAPE_S", 0.05)

    def generate(argv, timeout_s):
        fake_vllm.note("LOAD")
        return {"completed": int(argv[argv.index("--num-prompts") + 1]), "failed": 0}, ""
    monkeypatch.setattr(serving_load, "generate", generate)
    sizes = mixes.serving_sizes("cpu")
    for _, load in sizes.rate_loads("variable", (1.0, math.inf)):
        serving_load.run_load(server, "tok", load, {"ttft": 2000}, 10)
    order = [p for p in fake_vllm.paths if p in ("POST /reset_prefix_cache", "LOAD")]
    assert order == ["POST /reset_prefix_cache", "LOAD"] * 2


def test_a_failed_reset_fails_the_load_before_it_is_sent(fake_vllm, tmp_path, monkeypatch):
    fake_vllm.reset_answers = [(404, {"detail": "Not Found"})]  # a server started without dev mode
    sent = []
    monkeypatch.setattr(serving_load, "generate", lambda argv, timeout_s: sent.append(argv))
    load = mixes.serving_sizes("cpu").warmup_load()
    with pytest.raises(srv.ServerError, match="VLLM_SERVER_DEV_MODE"):
        serving_load.run_load(fake_vllm.server(tmp_path), "tok", load, {"ttft": 2000}, 10)
    assert sent == []


@pytest.fixture
def tier(monkeypatch):
    """tests/benchmarks/test_serving.py with run_load replaced: the Loads each test body sends, per call."""
    spec = importlib.util.spec_from_file_location("serving_tier_under_test", TEST_SERVING)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.sent = []

    def run_load(server, tokenizer, load, slo, timeout_s):
        module.sent.append(load)
        return result_of(load, server.settings.enable_prefix_caching)
    monkeypatch.setattr(module, "run_load", run_load)
    return module


class Server:
    def __init__(self, caching=True, kind="gpu"):
        self.settings = srv.ServerSettings(model="m", served_name="m", kind=kind, enable_prefix_caching=caching)
        self.start_seconds = 1.0

    def cache_config(self):
        return {"block_size": 16}



def run_twice(tier, body, **kw):
    """The test body, then a re-measurement of it (what the plugin's confirmation does): the loads of each."""
    bench = SimpleNamespace(pedantic=lambda fn, rounds, iterations: fn())
    metrics = Recorder("t", "h200")
    loads = []
    for _ in range(2):
        tier.sent = []
        body(benchmark=bench, metrics=metrics, target=SimpleNamespace(kind="gpu"),
             server=lambda prefix_caching=True: Server(prefix_caching), serving=mixes.serving_sizes("gpu"),
             served_model="m", **kw)
        loads.append(tier.sent)
        metrics.clear_measurements()
    assert metrics.attempt == 2
    return loads, metrics


def test_a_re_measurement_sends_the_same_loads(tier):
    request = SimpleNamespace(config=SimpleNamespace(option=SimpleNamespace(serving_rates=None)))
    for body, kw in ((tier.test_serving_rates, dict(shape="variable", request=request)),
                     (tier.test_serving_concurrency, dict(shape="variable")),
                     (tier.test_serving_prefix_caching, {})):
        (first, again), _ = run_twice(tier, body, **kw)
        assert first and first == again, body.__name__


def test_seeds_depend_on_the_case_only():
    gpu, cpu = mixes.serving_sizes("gpu"), mixes.serving_sizes("cpu")
    loads = [load for shape in gpu.shapes for _, load in gpu.rate_loads(shape, mixes.RATES)]
    loads += [load for _, load in gpu.concurrency_loads("variable")] + [gpu.prefix_load()]
    seeds = [load.seed for load in loads]
    assert len(set(seeds)) == len(seeds), "two cases share prompts"
    assert gpu.warmup_load().seed not in seeds
    # The same case on the CPU: the same seed (other lengths and counts come from the sizes, not the seed).
    assert [load.seed for _, load in cpu.rate_loads("variable", mixes.RATES)] == seeds[:4]


def test_gpu_loads_have_the_requests_their_gated_percentiles_need(tier):
    request = SimpleNamespace(config=SimpleNamespace(option=SimpleNamespace(serving_rates=None)))
    (first, _), metrics = run_twice(tier, tier.test_serving_rates, shape="variable", request=request)
    counts = {f"r{load.request_rate:g}": load.num_prompts for load in first}
    assert counts == {"r1": 32, "r4": 100, "r16": 200, "rinf": 200}
    # 1 req/s: its median is gated, its p99 (of 32 requests) is reported only, and says why.
    assert "r1.ttft_p99_ms" in metrics.params and "32 requests" in metrics.params["report_only"]["r1.ttft_p99_ms"]
    assert not any(name.startswith(("r4.", "r16.", "rinf.")) for name in metrics.params["report_only"])
    assert metrics.params["r1.prompts"] == 32 and metrics.params["r1.seed"] == mixes.case_seed("rates", "variable", "r1")


@pytest.mark.parametrize("name, figure", [("r1.ttft_p50_ms", "ttft_p50"), ("r16.ttft_p50_ms", "ttft_p50"),
                                          ("r32.ttft_p50_ms", "p50"), ("rinf.ttft_p50_ms", "queued_p50"),
                                          ("c64.ttft_p50_ms", "queued_p50"), ("cache_on.ttft_p50_ms", "queued_p50"),
                                          ("r4.tpot_p50_ms", "tpot_p50"), ("c16.tpot_p50_ms", "tpot_p50"),
                                          ("r16.itl_p99_ms", "p99"), ("rinf.e2el_p99_ms", "p99"),
                                          ("r4.output_tok_per_s", "rate"), ("c256.req_per_s", "rate"),
                                          ("slo_capacity_req_per_s", "rate")])
def test_each_figure_has_its_floor_key(tier, name, figure):
    assert tier.figure(name) == figure
    assert tier._floor("gpu", name) == tol.serving_floor("gpu", figure)  # a key the tolerance table knows


def test_the_prefix_ratio_is_reported_beside_its_gated_sides(tier):
    _, metrics = run_twice(tier, tier.test_serving_prefix_caching)
    assert metrics.params["ratio_sides"] == {"ttft_p50_ratio_on_off": "cache_on.ttft_p50_ms / cache_off.ttft_p50_ms"}
