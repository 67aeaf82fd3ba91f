"""Settings-tier section: the settings vLLM regresses in (fp8 KV cache, compiled vs eager, prefix caching under
load, long context, start-up), each configuration beside the one it is compared with.

A test of this tier measures both sides of its comparison itself, so one result holds both (`output_tok_per_s`
and `eager_output_tok_per_s`, ...): the tables have a row per result, or a row per side where the sides are
what the reader compares (KV dtypes, prefix-cache states).
"""

from __future__ import annotations

from pathlib import Path

from pagedbench.gate.run_file import is_number
from pagedbench.prediction.kv_arithmetic import blocks_for
from pagedbench.report.results import (
    COMPILE_MODES,
    ENGINE_STARTUP,
    KV_DTYPE_BLOCKS,
    KV_DTYPE_THROUGHPUT,
    LONG_CONTEXT,
    PREFIX_CACHING_THROUGHPUT,
    Result,
    results,
    sorted_by,
)
from pagedbench.report.tables import DASH, NOT_IN_RUN, fmt, md_table, times
from pagedbench.workloads.model import GIB

SETTINGS_TIER_TITLE = "Settings vLLM regresses in"

# (header, param): the start-up phases vLLM logs, shown where some result recorded them.
STARTUP_PHASES = (("model load s", "model_load_s"), ("cold compile s", "cold_compile_s"),
                  ("warm compile s", "warm_compile_s"), ("CUDA graph capture s", "graph_capture_s"),
                  ("engine init s", "engine_init_s"))


def _share(v) -> str:
    """A share recorded as a fraction (token agreement, hit rate), in %."""
    return fmt(None if v is None else 100 * v, 1, pct=True)


def _param_number(r: Result, name: str) -> float | None:
    v = r.param(name)
    return v if is_number(v) else None


def _per_round(v) -> str:
    """A figure the test recorded for each timed round: one number where every round gave it, else each."""
    if not isinstance(v, list) or not v or not all(is_number(x) for x in v):
        return fmt(v) if is_number(v) else DASH
    return fmt(v[0]) if len(set(v)) == 1 else " / ".join(fmt(x) for x in v)


def _rounds_text(v) -> str:
    """The same as a phrase: '48,608 in each of 3 rounds', or '48,608, 50,000 and 48,608 in its 3 rounds'."""
    if not isinstance(v, list) or not v or not all(is_number(x) for x in v):
        return "not recorded"
    if len(set(v)) == 1:
        return f"{fmt(v[0])} in each of {len(v)} rounds" if len(v) > 1 else fmt(v[0])
    return f"{', '.join(fmt(x) for x in v[:-1])} and {fmt(v[-1])} in its {len(v)} rounds"


def _blocks_ceiling(r: Result) -> int | None:
    """⌈(context + decode tokens) ÷ block size⌉: the blocks one request of that length fills."""
    context, decode, bs = r.param("context"), r.param("decode_tokens"), r.positive_param("block_size")
    if not (isinstance(context, int) and isinstance(decode, int) and isinstance(bs, int)):
        return None
    return blocks_for(context + decode, bs)


def _fp8(pools: list[Result], speeds: list[Result]) -> list[str]:
    parts = ["### fp8 KV cache", ""]
    if not (pools or speeds):
        return parts + [NOT_IN_RUN, ""]
    for r in pools:
        dtype, budget, users = r.param("kv_cache_dtype"), _param_number(r, "kv_budget_bytes"), r.param("users_per_budget")
        users = users if isinstance(users, dict) else {}
        model_dtype = next((d for d in users if d != dtype), None)  # the other key: the model's own dtype
        parts += [f"The same KV budget, {fmt(None if budget is None else budget / GIB, 2)} GiB, block size "
                  f"{fmt(r.param('block_size'))}, with the KV cache at the model's dtype (`kv_cache_dtype=\"auto\"`) "
                  f"and at {dtype}: each pool must hold the blocks of the KV arithmetic, {dtype}'s as many times more as "
                  "its elements are smaller (asserted). Users = requests of the variable workload's mean length "
                  "(prompt + output) that fit the budget (arithmetic).", "",
                  md_table(["KV cache dtype", "blocks", "users per budget"],
                           [[f"{model_dtype or 'model dtype'} (auto)", fmt(r.metric("num_gpu_blocks_auto")),
                             fmt(users.get(model_dtype))],
                            [str(dtype), fmt(r.metric("num_gpu_blocks")), fmt(users.get(dtype))]]), ""]
    if not pools:
        parts += ["Block pool at a fixed budget: " + NOT_IN_RUN, ""]
    parts += ["Throughput of the same requests at each KV dtype; token agreement = the share of greedy tokens of "
              "the check requests identical to the model dtype's:", ""]
    if not speeds:
        return parts + [NOT_IN_RUN, ""]
    rows = [[str(r.param("kv_cache_dtype")), str(r.param("workload")), fmt(r.param("requests")),
             fmt(r.metric("output_tok_per_s"), 1), fmt(r.metric("auto_output_tok_per_s"), 1),
             times(r.metric("speedup_vs_auto"), 2), fmt(r.param("fp8_blocks")), fmt(r.param("auto_blocks")),
             _share(r.metric("token_agreement")), str(r.param("identical_requests") or DASH)]
            for r in sorted_by(speeds, "kv_cache_dtype")]
    headers = ["KV cache dtype", "workload", "requests", "output tok/s", "auto output tok/s", "÷ auto", "blocks",
               "auto blocks", "token agreement", "identical requests"]
    return parts + [md_table(headers, rows, numeric_from=2), ""]


def _compile(rs: list[Result]) -> list[str]:
    parts = ["### Compiled vs eager", ""]
    if not rs:
        return parts + [NOT_IN_RUN, ""]
    rows = []
    for r in sorted_by(rs, "workload"):
        effective = r.param("vllm_effective")
        mode = effective.get("cudagraph_mode") if isinstance(effective, dict) else None
        rows.append([str(r.param("workload")), fmt(r.param("requests")), fmt(r.metric("output_tok_per_s"), 1),
                     fmt(r.metric("eager_output_tok_per_s"), 1), times(r.metric("speedup_vs_eager"), 2),
                     _share(r.metric("token_agreement")), str(r.param("identical_requests") or DASH),
                     str(mode) if mode is not None else DASH])
    headers = ["workload", "requests", "default output tok/s", "eager output tok/s", "default ÷ eager",
               "token agreement", "identical requests", "cudagraph_mode"]
    return parts + ["vLLM's default (torch.compile, and CUDA graphs on a GPU) against `enforce_eager=True` on the "
                    "same requests; on a GPU the default must not be slower than eager by more than the noise "
                    "(asserted). Token agreement: the default's greedy tokens of the check requests against eager's.",
                    "", md_table(headers, rows, numeric_from=1, text=(len(headers) - 1,)), ""]


def _prefix(rs: list[Result]) -> list[str]:
    parts = ["### Prefix caching under load", ""]
    if not rs:
        return parts + [NOT_IN_RUN, ""]
    for r in rs:
        primed = r.metric("primed_prefix_hits")
        rows = [["primed (system prompt cached first)", fmt(r.metric("output_tok_per_s"), 1),
                 _per_round([primed] if primed is not None else None), _per_round(r.param("primed_counter_hits"))],
                ["cold (nothing cached before the round)", fmt(r.metric("cold_output_tok_per_s"), 1),
                 _per_round(r.param("cold_prefix_hits")), _per_round(r.param("cold_counter_hits"))],
                ["no reuse (a cache salt per request)", fmt(r.metric("no_reuse_output_tok_per_s"), 1),
                 _per_round(r.param("no_reuse_prefix_hits")), DASH]]
        parts += [f"{fmt(r.param('requests'))} requests sharing one system prompt (workload "
                  f"`{r.param('workload') or DASH}`), block size {fmt(r.param('block_size'))}, every round from an "
                  "emptied cache. Hit tokens: prompt tokens served from the cache, per timed round (one number "
                  "where every round gave it).", "",
                  md_table(["prefix cache", "output tok/s", "hit tokens (requests' count)",
                            "hit tokens (vLLM's counter)"], rows), "",
                  f"Primed ÷ no reuse: **{times(r.metric('speedup_vs_no_reuse'), 2)}** (on a GPU it must exceed 1, "
                  f"asserted). Cold rounds hit {_share(_param_number(r, 'cold_hit_rate'))} of their prompt tokens.",
                  "",
                  f"Primed hits: **{fmt(primed)}** tokens, summed over the requests' own cached-token counts "
                  f"(predicted {fmt(r.param('predicted_primed_hits'))}: every request takes the system prompt's full "
                  f"blocks); vLLM's `vllm:prefix_cache_hits` counter: {_rounds_text(r.param('primed_counter_hits'))}. "
                  "The requests' count is what the test asserts equal to the prediction; the counter is shown beside "
                  "it (asserted equal only on the CPU).", ""]
    return parts


def _long_context(rs: list[Result]) -> list[str]:
    parts = ["### Long context", ""]
    if not rs:
        return parts + [NOT_IN_RUN, ""]
    rows = [[fmt(r.param("context")), fmt(r.param("decode_tokens")), fmt(r.param("block_size")),
             fmt(r.metric("prefill_tok_per_s"), 1), fmt(r.metric("decode_tok_per_s"), 1), fmt(r.metric("peak_blocks")),
             fmt(_blocks_ceiling(r))] for r in sorted_by(rs, "context")]
    headers = ["context tokens", "decode tokens", "block size", "prefill tok/s", "decode tok/s", "peak blocks",
               "⌈(context + decode) ÷ block size⌉"]
    return parts + ["One request of that many prompt tokens, chunked prefill at vLLM's default: prefill tok/s from a "
                    "1-token generation, decode tok/s from the extra time of the decode tokens. Peak blocks: the "
                    "most blocks vLLM held for the request, against the arithmetic (asserted equal, or one more "
                    "where async scheduling books the next step's slot early).", "",
                    md_table(headers, rows, numeric_from=0), ""]


def _startup(rs: list[Result]) -> list[str]:
    parts = ["### Start-up", ""]
    if not rs:
        return parts + [NOT_IN_RUN, ""]
    phases = [(h, name) for h, name in STARTUP_PHASES if any(_param_number(r, name) is not None for r in rs)]
    rows = [[fmt(r.metric("cold_startup_s"), 1), fmt(r.metric("warm_startup_s"), 1)]
            + [fmt(_param_number(r, name), 1) for _, name in phases] for r in rs]
    return parts + ["`vllm bench startup`, each start in its own process: cold (vLLM's and inductor's caches "
                    "empty), then warm (after a warm-up start filled them); a warm start must be faster than a "
                    "cold one (asserted). Phases as vLLM logged them; model load and graph capture are the last "
                    "(warm) start's.", "",
                    md_table(["cold start s", "warm start s"] + [h for h, _ in phases], rows, numeric_from=0), ""]


def section_settings_tier(run: dict, out_dir: Path) -> tuple[str, str]:
    pools, speeds, compiled, prefix, long_context, startup = (
        results(run, f) for f in (KV_DTYPE_BLOCKS, KV_DTYPE_THROUGHPUT, COMPILE_MODES, PREFIX_CACHING_THROUGHPUT,
                                  LONG_CONTEXT, ENGINE_STARTUP))
    if not (pools or speeds or compiled or prefix or long_context or startup):
        return SETTINGS_TIER_TITLE, NOT_IN_RUN
    intro = ("The settings tier (`tests/benchmarks/test_vllm_settings.py`): each setting measured beside the configuration it "
             "is compared with, in the same test and on the same requests; every speed figure comes with its output "
             "check (the greedy tokens of fixed check requests against the reference configuration's).")
    parts = [intro, ""] + _fp8(pools, speeds) + _compile(compiled) + _prefix(prefix) + _long_context(long_context) \
        + _startup(startup)
    return SETTINGS_TIER_TITLE, "\n".join(parts).rstrip("\n")
