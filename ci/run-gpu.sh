#!/usr/bin/env bash
# Run the GPU benchmarks on this machine, compare with its stored baselines, write the report.
#
#   ci/run-gpu.sh [blocks|throughput|kernels|settings|long|serving|tp|all]  (default: all, one chunk after another)
#
# settings runs the settings tier without its long cases (fp8 KV cache, compiled vs eager, prefix caching
# under load); long runs the long-context and start-up cases.
# tp runs the tensor-parallel tests (2 GPUs) under the slug <gpu>x2 (baselines/h200x2.json,
# reports/h200x2/); on a machine with one GPU it is skipped with a note.
#
# Environment:
#   PAGEDBENCH_SKIP_INSTALL=1   do not `pip install -e .[gpu]` (the venv is ready)
#   PAGEDBENCH_SLUG=h100        use this slug instead of the one NVML reports
#   PAGEDBENCH_EXPECT_SLUG=h100 fail when the detected slug differs (CI: a mislabelled runner)
#   PYTHON=python3.11           interpreter to use (default: python)
#   PYTEST_ADDOPTS              extra pytest arguments, as pytest itself reads them
#
# Writes runs/<slug>-<chunk>.json and reports/<slug>/ (report.md + PNGs, from every
# runs/<slug>-*.json present, so the chunks of one machine share one report).
# Exit code: pytest's (1 = a test or a baseline comparison failed); "nothing collected" counts as 0.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python}
CHUNKS=(blocks throughput kernels settings long serving tp)

usage() { echo "usage: $0 [blocks|throughput|kernels|settings|long|serving|tp|all]" >&2; }

chunk=${1:-all}
case "$chunk" in
  all) todo=("${CHUNKS[@]}") ;;
  blocks|throughput|kernels|settings|long|serving|tp) todo=("$chunk") ;;
  -h|--help) usage; exit 0 ;;
  *) usage; exit 2 ;;
esac

if [[ "${PAGEDBENCH_SKIP_INSTALL:-0}" != 1 ]]; then
  # Install before detecting the GPU: the detection needs the package and NVML bindings.
  "$PY" -m pip install -e ".[gpu]"
fi

slug=${PAGEDBENCH_SLUG:-$("$PY" -c 'from pagedbench.device import current_device; print(current_device().slug)')}
if [[ "$slug" == cpu && -z "${PAGEDBENCH_SLUG:-}" ]]; then
  echo "error: NVML sees no NVIDIA GPU here; set PAGEDBENCH_SLUG to force a slug (CPU runs: tox -e cpu)" >&2
  exit 2
fi
if [[ -n "${PAGEDBENCH_EXPECT_SLUG:-}" && "$slug" != "$PAGEDBENCH_EXPECT_SLUG" ]]; then
  echo "error: this machine's GPU is '$slug', the job expected '$PAGEDBENCH_EXPECT_SLUG'" >&2
  exit 2
fi
echo "GPU slug: $slug"

gpus=$("$PY" -c 'from pagedbench.device import current_device; print(current_device().count)')

mkdir -p runs
final=0
for c in "${todo[@]}"; do
  # The tensor-parallel ids carry <gpu>x2 and keep their own baselines and report; the throughput
  # chunk leaves them out, or a two-GPU runner would store them under the one-GPU slug.
  case "$c" in
    tp) cslug="${slug}x2"; marks="tensor_parallel"
        if ((gpus < 2)); then echo "note: tp needs 2 GPUs, NVML sees $gpus: skipped"; continue; fi ;;
    throughput) cslug=$slug; marks="throughput and not tensor_parallel" ;;
    settings) cslug=$slug; marks="settings and not long" ;;
    *) cslug=$slug; marks=$c ;;
  esac
  run_json="runs/$cslug-$c.json"
  rm -f "$run_json"  # a crashed run must not leave last week's numbers behind as if they were new
  echo "=== $c on $cslug ==="
  set +e
  # --durations: where a chunk's time goes (engine starts, compiles) shows in the CI log.
  # --benchmark-compare: timings shown beside those stored in baselines/<slug>.json; the pass/fail gate is
  # the suite's own (noise model, confirmation), not a fixed percentage on host-clock rounds.
  "$PY" -m pytest --benchmark-only -m "$marks" -k "$cslug" --benchmark-compare \
    --metrics-json "$run_json" -p no:cacheprovider --durations=15
  rc=$?
  set -e
  if [[ $rc == 5 ]]; then
    echo "note: no '$c' test selected for '$cslug' (pytest exit 5); counted as success"
    rc=0
  fi

  mapfile -t runs < <(compgen -G "runs/$cslug-*.json" | sort)
  if ((${#runs[@]})); then
    echo "report from: ${runs[*]}"
    if ! "$PY" -m pagedbench report "${runs[@]}" --out "reports/$cslug"; then
      echo "error: report generation failed" >&2
      ((rc)) || rc=3
    fi
  fi
  ((final)) || final=$rc
done
exit "$final"
