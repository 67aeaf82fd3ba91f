"""Online serving: `vllm serve` under vLLM's own load generator (`vllm bench serve`).

One server per setting, shared by the tests that use it (the engine pool keeps one heavy
process on the device at a time). Each test sweeps what it is about (request rates,
concurrency, prefix caching on/off) inside one timed call, so every figure a ratio or an
SLO capacity needs comes from the same test, and `-k` cannot separate them.
"""

import math

import pytest

from pagedbench.engines import vllm_server  # server_settings through the module: ci/plant.py replaces it
from pagedbench.engines.vllm_server import VllmServer, group_alive
from pagedbench.gate import tolerance as tol
from pagedbench.meters.energy import EnergyMeter
from pagedbench.meters.serving_load import max_in_flight, preload_generator, run_load
from pagedbench.metrics import slo
from pagedbench.prediction import kv_arithmetic as kv
from pagedbench.workloads.model_folder import servable_model
from pagedbench.workloads.serving_mixes import MIN_REQUESTS, gated, serving_sizes

pytestmark = pytest.mark.serving
SHAPES = ("variable", "long_prompt", "long_output")
LATENCIES = (("ttft", "p50"), ("ttft", "p99"), ("tpot", "p50"), ("tpot", "p99"), ("itl", "p99"), ("e2el", "p99"))
# TTFT p50 has its own floor where requests arrive spread out (<= 16 req/s); where the whole load is queued
# at once (unbounded rate, a concurrency limit) it moves with queue order, and takes the queued one.
SPREAD_OUT = 16.0


def figure(metric_name: str) -> str:
    """Its figure key in tolerance.serving_floor: 'r16.ttft_p50_ms' -> 'ttft_p50', 'rinf.ttft_p50_ms' ->
    'queued_p50', 'c64.itl_p99_ms' -> 'p99', 'r4.output_tok_per_s' -> 'rate', ..."""
    key, _, leaf = metric_name.rpartition(".")
    if leaf.endswith("_p99_ms"):
        return "p99"
    if leaf in ("output_tok_per_s", "req_per_s", "slo_capacity_req_per_s"):
        return "rate"
    if leaf == "tpot_p50_ms":
        return "tpot_p50"
    if key.startswith("r") and key[1:] != "inf":
        return "ttft_p50" if float(key[1:]) <= SPREAD_OUT else "p50"
    return "queued_p50"  # TTFT p50 at an unbounded rate, a concurrency limit, the prefix-caching loads


def _floor(kind: str, metric_name: str) -> float:
    """The one place a serving figure gets its floor."""
    return tol.serving_floor(kind, figure(metric_name))


@pytest.fixture(scope="session")
def served_model(model_dir, tmp_path_factory):
    return str(servable_model(model_dir, tmp_path_factory.mktemp("served-model")))


@pytest.fixture
def serving(target):
    return serving_sizes(target.kind)


@pytest.fixture
def server(start_engine, engine_pool, served_model, model_shape, serving, target, load_format, request):
    """get(prefix_caching) -> a live server; one that died since the last test is replaced."""
    log_dir = request.config.option.serving_logs

    def get(prefix_caching=True):
        def side(caching):
            return vllm_server.server_settings(served_model, model_shape.name, serving, target.kind, load_format,
                                                 log_dir, caching)
        settings = side(prefix_caching)
        preload_generator()
        srv = start_engine(settings, (side(not prefix_caching),) if serving.sides_together else ())
        if not srv.alive():
            engine_pool.close()
            srv = start_engine(settings)
        if not srv.warmed:
            run_load(srv, served_model, serving.warmup_load(), slo.SLO_MS, serving.load_timeout_s)
            srv.warmed = True
        return srv
    return get


def measure(metrics, srv, tokenizer, load, timeout_s, key):
    """One load; its figures under `key.*` (latencies lower-is-better, rates higher-is-better). A percentile
    of too few requests to estimate (serving_mixes.MIN_REQUESTS) is a param, named in `report_only`."""
    with EnergyMeter() as energy:
        r = energy.around(lambda: run_load(srv, tokenizer, load, slo.SLO_MS, timeout_s))
    energy.record(metrics, r["total_output_tokens"], tol.ENERGY, prefix=f"{key}.")
    kind, n = srv.settings.kind, load.num_prompts
    for what, pct in LATENCIES:
        name, value = f"{key}.{what}_{pct}_ms", float(r[f"{pct}_{what}_ms"])
        if gated(pct, n):
            metrics.metric(name, value, "ms", "lower", floor=_floor(kind, name))
        else:
            why = f"{pct} of {n} requests: reported, not gated (a {pct} needs >= {MIN_REQUESTS[pct]} requests)"
            metrics.param(**{name: value}, report_only={**metrics.params.get("report_only", {}), name: why})
    for name, field, unit in (("output_tok_per_s", "output_throughput", "tok/s"),
                              ("req_per_s", "request_throughput", "req/s")):
        metrics.metric(f"{key}.{name}", r[field], unit, "higher", floor=_floor(kind, f"{key}.{name}"))
    metrics.param(**{f"{key}.{k}": float(r[k]) for k in ("p90_ttft_ms", "p90_tpot_ms", "request_goodput",
                                                          "server.kv_cache_usage_peak", "server.preemptions",
                                                          "server.running_peak")},
                  **{f"{key}.prompts": n, f"{key}.seed": load.seed, f"{key}.offered_rate": load.request_rate})
    return r


@pytest.mark.matrix(cpu=dict(shape=SHAPES), gpu=dict(shape=SHAPES))
def test_serving_rates(benchmark, metrics, target, shape, server, serving, served_model, request):
    srv = server()
    rates = request.config.option.serving_rates or serving.shape_rates[shape]
    if shape != "variable":
        rates = [r for r in rates if r in serving.shape_rates[shape]] or rates[-1:]
    mix, loads = serving.shapes[shape], serving.rate_loads(shape, rates)
    results = {}

    def sweep():
        for rate, (key, load) in zip(rates, loads):
            results[rate] = measure(metrics, srv, served_model, load, serving.load_timeout_s, key)
    benchmark.pedantic(sweep, rounds=1, iterations=1)  # one load per rate: p99 needs the whole load
    metrics.param(shape=shape, input_len=mix.input_len, output_len=mix.output_len, range_ratio=mix.range_ratio,
                  rates=[key for key, _ in loads], server_settings=srv.settings.changed(),
                  server_start_s=round(srv.start_seconds, 1))
    cap = slo.capacity([(r["request_throughput"], slo.margin(r)) for r in results.values()])
    metrics.param(slo_capacity=cap.describe(), slo_capacity_bound=cap.bound)
    if cap.bound == "interpolated":
        metrics.metric("slo_capacity_req_per_s", cap.req_per_s, "req/s", "higher",
                       floor=_floor(target.kind, "slo_capacity_req_per_s"))
    if math.isinf(max(rates)):
        # A sample of /metrics that saw requests running must see the KV blocks they hold (a load shorter
        # than the sampling interval may be seen by none: then there is nothing to check).
        r = results[max(rates)]
        if r["server.running_peak"] > 0:
            assert r["server.kv_cache_usage_peak"] > 0.0, \
                f"{r['server.running_peak']:.0f} requests seen running with KV usage read as 0"
    if target.kind == "gpu":
        # An 8B model on one Hopper GPU serves 1 req/s well inside MLPerf's SLO; missing it is a regression.
        lowest = results[rates[0]]
        if rates[0] <= 1.0:
            assert slo.margin(lowest) <= 1.0, f"SLO missed at {rates[0]:g} req/s: margin {slo.margin(lowest):.2f}"
        # Queueing: offering more requests per second never lowers what the server completes per second.
        achieved = [results[r]["request_throughput"] for r in rates]
        assert all(b >= 0.9 * a for a, b in zip(achieved, achieved[1:])), f"req/s fell as the rate rose: {achieved}"


@pytest.mark.matrix(cpu=dict(shape=("variable",)), gpu=dict(shape=("variable",)))
def test_serving_concurrency(benchmark, metrics, target, shape, server, serving, served_model):
    """All requests offered at once, at most `c` in flight: the client-side limit of vLLM's CI sweeps."""
    srv = server()
    results = {}

    def sweep():
        for c, (key, load) in zip(serving.concurrency, serving.concurrency_loads(shape)):
            results[c] = measure(metrics, srv, served_model, load, serving.load_timeout_s, key)
    benchmark.pedantic(sweep, rounds=1, iterations=1)
    metrics.param(shape=shape, concurrency=list(serving.concurrency), server_settings=srv.settings.changed())
    for c, r in results.items():  # the client never has more than c requests in flight
        assert max_in_flight(r) <= c, f"c={c}: {max_in_flight(r)} requests in flight at once"
    if target.kind == "gpu":  # batching: 16x the requests in flight gives more tokens per second
        lo, hi = serving.concurrency[0], serving.concurrency[-1]
        assert results[hi]["output_throughput"] > results[lo]["output_throughput"], "no gain from concurrency"


def test_serving_prefix_caching(benchmark, metrics, target, server, serving, served_model):
    """The seeds' shared system prompt (500 shared + 100 unique tokens), caching on then off.

    Hits are what the block-pool tier predicts in blocks: every request after the first reuses the
    shared prompt's full blocks, floor(500 / block_size) of them; with caching off, none."""
    load = serving.prefix_load()
    mix, n = load.shape, load.num_prompts
    results = {}

    def both():
        for on in (True, False):
            srv = server(prefix_caching=on)
            key = "cache_on" if on else "cache_off"
            results[on] = (measure(metrics, srv, served_model, load, serving.load_timeout_s, key),
                           srv.cache_config()["block_size"])
    benchmark.pedantic(both, rounds=1, iterations=1)  # the cache-off server's start is inside it, on a GPU
    (on, block), (off, _) = results[True], results[False]
    metrics.param(shared_len=mix.prefix_len, unique_len=mix.input_len, requests=n, block_size=block)
    metrics.exact("cache_on.prefix_hit_tokens", int(on["server.prefix_cache_hits"]), "tokens")
    metrics.derived("cache_on.hit_rate", on["server.prefix_cache_hits"] / on["server.prefix_cache_queries"],
                    "", "higher")
    metrics.ratio("ttft_p50_ratio_on_off", on["p50_ttft_ms"] / off["p50_ttft_ms"], "x", "lower",
                  sides="cache_on.ttft_p50_ms / cache_off.ttft_p50_ms")
    assert on["server.prefix_cache_queries"] == n * (mix.prefix_len + mix.input_len)
    assert on["server.prefix_cache_hits"] == kv.prefix_hit_tokens(n - 1, mix.prefix_len, mix.input_len, block)
    assert off["server.prefix_cache_hits"] == 0
    if target.kind == "gpu":  # a sixth of the prefill per request: the first token comes sooner
        assert on["p50_ttft_ms"] < off["p50_ttft_ms"], f"TTFT p50 on {on['p50_ttft_ms']:.0f} ms vs off {off['p50_ttft_ms']:.0f}"


def test_server_leaves_nothing_behind(server, engine_pool):
    """Stopping the server takes its whole process group (API server, engine core, workers) with it, and
    closing the pool stops a server standing by as well."""
    srv = engine_pool.engine if isinstance(engine_pool.engine, VllmServer) else server()
    groups = [s.proc.pid for s in (srv, *engine_pool.standby.values()) if isinstance(s, VllmServer)]
    engine_pool.close()
    assert not [g for g in groups if group_alive(g)], f"processes of the server groups {groups} outlived them"
