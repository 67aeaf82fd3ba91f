"""The report's top: header, the comparison with the stored baseline, the headline figures (also the README's rows)."""

from __future__ import annotations

from pagedbench.gate.baseline_file import STATUSES
from pagedbench.gate.run_file import OUTCOMES, is_number, setup_slug
from pagedbench.gate.summary import thresholds
from pagedbench.report.results import (
    BLOCK_COUNTS,
    HF_GENERATE,
    MEMORY_WASTE,
    PAGED_DECODE,
    TP_BLOCK_COUNTS,
    TP_SCALING,
    VLLM_THROUGHPUT,
    Result,
    results,
    sorted_by,
    speedups_vs_hf,
)
from pagedbench.report.serving_sections import headline_serving
from pagedbench.report.tables import DASH, fmt, md_table, speedup_cell
from pagedbench.workloads.model import GIB


def _gpu_line(gpu: dict) -> str:
    bits = []
    if is_number(gpu.get("memory_bytes")) and gpu["memory_bytes"]:
        bits.append(f"{gpu['memory_bytes'] / GIB:.0f} GiB")
    for key in ("driver", "cuda"):
        if gpu.get(key):
            bits.append(f"{key} {gpu[key]}")
    if is_number(gpu.get("count")) and gpu["count"] > 1:
        bits.append(f"{gpu['count']} GPUs")
    return str(gpu.get("name") or "unknown") + (f" ({', '.join(bits)})" if bits else "")


def header(run: dict, sources: list) -> str:
    outcomes = {o: 0 for o in OUTCOMES}
    for e in run["tests"].values():
        outcomes[e["outcome"]] += 1
    versions = ", ".join(f"{k} {v}" for k, v in sorted(run["versions"].items())) or DASH
    lines = [f"# pagedbench report: {setup_slug(run)}", "",
             f"- **GPU:** {_gpu_line(run['gpu'])}",
             f"- **Versions:** {versions}",
             f"- **Run:** {run.get('started') or DASH} → {run.get('finished') or DASH}",
             f"- **Tests:** {', '.join(f'{n} {o}' for o, n in outcomes.items())}"]
    if sources:
        lines.append(f"- **From:** {', '.join(f'`{s}`' for s in sources)}")
    if run.get("interrupted"):
        lines += ["", "> **Warning:** the run was interrupted; sections may be incomplete."]
    failed = [(t, e["failure"]) for t, e in sorted(run["tests"].items()) if e["outcome"] == "failed" and e.get("failure")]
    if failed:  # failed before measuring (vLLM did not start): no section shows them
        lines += ["", "Failed before their figures were measured:", ""]
        lines += [f"- `{t}`: {why}" for t, why in failed]
    return "\n".join(lines)


def comparisons_summary(run: dict) -> str:
    counts = {s: 0 for s in STATUSES[:4]}  # ok, regressed, improved, new; not_compared and unstable when present
    notable = []
    for nodeid, e in sorted(run["tests"].items()):
        for c in e.get("comparisons", []):
            counts[c["status"]] = counts.get(c["status"], 0) + 1
            if c["status"] in ("regressed", "improved"):
                notable.append((nodeid.split("::")[-1], c))
    parts = ["## Comparison with the stored baseline", "",
             md_table(list(counts), [[str(n) for n in counts.values()]], numeric_from=0)]
    if not any(counts.values()):
        parts += ["", "_No comparisons in this run (no baseline for this GPU, or compare was off)._"]
    bands = thresholds(c for e in run["tests"].values() for c in e.get("comparisons", []))
    if bands:
        parts += ["", "Detection thresholds (the smallest change the gate flags, per test function and metric):", "",
                  md_table(["test", "metric", "cases", "lowest", "median", "highest"],
                           [[f, m, str(len(ts)), *(f"±{100 * t:.1f}%" for t in (ts[0], ts[len(ts) // 2], ts[-1]))]
                            for (f, m), ts in bands.items()], numeric_from=2)]
    if notable:
        rows = []
        for test, c in notable:
            base, now = c.get("baseline"), c.get("now")
            change = f"{100 * (now - base) / base:+.1f}%" if is_number(base) and base and is_number(now) else DASH
            tol = c.get("tolerance")
            rows.append([test, str(c.get("metric")), fmt(base, 2), fmt(now, 2), change,
                         "±" + fmt(100 * tol, 1, True) if is_number(tol) else DASH,
                         ("**REGRESSED**" + " (baseline from one run)" * bool(c.get("one_run")))
                         if c["status"] == "regressed" else "improved"])
        parts += ["", md_table(["test", "metric", "baseline", "now", "change", "tolerance", "status"], rows,
                               numeric_from=2, text=(6,))]
    return "\n".join(parts)


def _best(rs: list[Result], metric: str) -> Result | None:
    with_value = [r for r in rs if r.metric(metric) is not None]
    return max(with_value, key=lambda r: r.metric(metric)) if with_value else None


FIGURES_HEADERS = ["GPU", "vLLM output tok/s", "HF tok/s", "speed-up", "blocks per block size", "measured waste",
                   "best decode GB/s", "TTFT p99 ms (variable, 16 req/s)", "SLO capacity (variable)"]
FIGURES_TEXT_COLUMNS = (4, 5, 6, 8)


def figures_table(run: dict) -> str:
    """One-row markdown table of a run's headline figures, for the README; '–' where absent."""
    return md_table(FIGURES_HEADERS, [figures_row(run)], text=FIGURES_TEXT_COLUMNS)


def figures_row(run: dict) -> list[str]:
    """The cells of figures_table's row, under FIGURES_HEADERS (the README stacks several GPUs' rows).
    A run of the TP tests alone (h200x2) shows TP 2's output tok/s and its blocks per GPU."""
    vllm = _best(results(run, VLLM_THROUGHPUT), "output_tok_per_s")
    tp = _best(results(run, TP_SCALING), "tp2_output_tok_per_s") if vllm is None else None
    hf = _best(results(run, HF_GENERATE), "tok_per_s")
    speedups = speedups_vs_hf(run)
    speedup = speedups.get(vllm.nodeid) if vllm else None
    if speedup is None:  # the best vLLM row may lack it; any speed-up still says something
        speedup = max(speedups.values(), default=None)

    counts = results(run, BLOCK_COUNTS)
    models = {str(r.param("model")) for r in counts}
    model = "llama-3.1-8b" if "llama-3.1-8b" in models else min(models, default=None)
    mine = [r for r in sorted_by(counts, "block_size") if str(r.param("model")) == model
            and r.metric("num_gpu_blocks") is not None]
    budget_key = "kv_budget_bytes"
    if not mine:
        mine = [r for r in sorted_by(results(run, TP_BLOCK_COUNTS), "block_size") if r.metric("num_gpu_blocks") is not None]
        budget_key = "kv_budget_bytes_per_gpu"
    blocks = "; ".join(f"{r.param('block_size')}: {fmt(r.metric('num_gpu_blocks'))}" for r in mine) or DASH
    budgets = {r.param(budget_key) for r in mine}
    if len(budgets) == 1 and is_number(budget := budgets.pop()):  # the pool of a test budget, not the whole GPU
        blocks += (f" (in {budget / GIB:,.{0 if budget % GIB == 0 else 2}f} GiB"
                   + (" per GPU)" if budget_key.endswith("per_gpu") else ")"))

    waste = DASH
    mw = sorted_by(results(run, MEMORY_WASTE), "block_size")
    if mw:
        r = next((x for x in mw if x.param("block_size") == 16), mw[0])
        if r.metric("paged_waste_pct") is not None:
            contiguous = r.metric("contiguous_waste_pct")
            waste = (f"paged {r.metric('paged_waste_pct'):.1f}% (block {r.param('block_size')})"
                     + (f" vs contiguous {contiguous:.1f}%" if contiguous is not None else ""))

    dec = _best(results(run, PAGED_DECODE), "kv_gbps")
    decode = f"{dec.metric('kv_gbps'):,.0f} ({dec.param('impl')})" if dec else DASH
    ttft_p99, capacity = headline_serving(run)
    tok_s = fmt(vllm.metric("output_tok_per_s") if vllm else None)
    if tp is not None:
        tok_s = f"{fmt(tp.metric('tp2_output_tok_per_s'))} (TP 2; TP 1 {fmt(tp.metric('tp1_output_tok_per_s'))})"
    return [setup_slug(run), tok_s,
            fmt(hf.metric("tok_per_s") if hf else None), speedup_cell(speedup),
            blocks, waste, decode, fmt(ttft_p99), capacity or DASH]
