"""Which of a run's figures a baseline may take: passed, uncontaminated, stable."""

from __future__ import annotations

from pagedbench.gate import baseline_file as bl


def clean_tests(results: dict[str, dict], outcomes: tuple[str, ...] = ("passed",)
                ) -> tuple[dict[str, bl.Tests], list[str]]:
    """Per slug, the metrics a baseline may take from a run: of tests with one of `outcomes`, the
    uncontaminated and stable ones."""
    by_slug: dict[str, bl.Tests] = {}
    skipped = []
    for test_id, entry in sorted(results.items()):
        if entry.get("outcome") not in outcomes or not entry.get("metrics"):
            continue
        if entry.get("contaminated"):
            skipped.append(f"{test_id} (contaminated: {'; '.join(entry['contaminated'])})")
            continue
        unstable = entry.get("unstable", {})
        metrics = {n: bl.Metric(**m) for n, m in entry["metrics"].items() if n not in unstable}
        skipped += [f"{test_id} {n} (unstable)" for n in unstable]
        if metrics:
            by_slug.setdefault(entry["slug"], {})[test_id] = metrics
    return by_slug, skipped
