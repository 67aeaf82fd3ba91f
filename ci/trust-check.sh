#!/usr/bin/env bash
# Run one GPU chunk N times against the stored baseline and count false alarms (failed tests).
#
#   ci/trust-check.sh CHUNK N [OUTDIR]        CHUNK: a marker: blocks | throughput | kernels | settings | long | serving
#   ci/trust-check.sh CHUNK N OUTDIR --record  the N runs become the baseline (noise model), not compared
#
# Each run writes OUTDIR/<slug>-<chunk>-<i>.json and OUTDIR/<slug>-<chunk>-<i>.log. With --record the
# runs are merged by `python -m pagedbench baseline` (median and run-to-run spread per metric).
# Extra pytest arguments: PYTEST_ADDOPTS.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
PY=${PYTHON:-python}
chunk=${1:?chunk}; n=${2:?runs}; out=${3:-runs}; record=${4:-}
slug=${PAGEDBENCH_SLUG:-$("$PY" -c 'from pagedbench.device import current_device; print(current_device().slug)')}
mkdir -p "$out"
alarms=0; files=()
for i in $(seq 1 "$n"); do
  tag="$slug-$chunk-${record:+rec}$i"
  start=$(date +%s)
  args=(--benchmark-only -m "$chunk" -k "$slug" -p no:cacheprovider --metrics-json "$out/$tag.json")
  [[ -n "$record" ]] && args+=(--confirm-runs=0 "--baselines-dir=$out/none")
  "$PY" -m pytest "${args[@]}" >"$out/$tag.log" 2>&1
  rc=$?
  failed=$(grep -Eo '[0-9]+ failed' "$out/$tag.log" | tail -1 | cut -d' ' -f1)
  echo "run $i: exit $rc, ${failed:-0} failed, $(( $(date +%s) - start )) s  ($(tail -1 "$out/$tag.log"))"
  alarms=$((alarms + ${failed:-0}))
  files+=("$out/$tag.json")
done
if [[ -n "$record" ]]; then
  "$PY" -m pagedbench baseline "${files[@]}"
else
  echo "false alarms over $n run(s) of $chunk on $slug: $alarms"
fi
