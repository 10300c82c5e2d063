#!/usr/bin/env bash
# AGW-ResNet50 at 288x144 on this machine's NVIDIA GPUs (a prepared check, not part of CI).
#
# Prints training images/s (fp32, bf16-mixed, channels_last, compiled),
# feature-extraction images/s of the same variants, and fp32 DDP training on 1 GPU against
# all GPUs; every figure with its ratio against the baseline measured in the same run.
# Synthetic in-memory batches: no dataset, no download. Everything it writes (results,
# compiler caches) goes to a temporary folder, removed at the end. Each step has its own
# time limit; the whole run stays under 8 minutes. Put its output in docs/training.md
# with the date and the GPU.
#
# Usage: bash benchmarks/gpu.sh            (PYTHON=path/to/python to choose the interpreter)
set -euo pipefail

PYTHON=${PYTHON:-python}
HERE=$(cd "$(dirname "$0")" && pwd)

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu.sh: nvidia-smi not found; run this on a machine with an NVIDIA GPU and driver" >&2
  exit 2
fi
GPUS=$(nvidia-smi --query-gpu=index --format=csv,noheader | wc -l)
if [ "$GPUS" -lt 1 ]; then
  echo "gpu.sh: nvidia-smi lists no GPU" >&2
  exit 2
fi
if ! "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu.sh: $PYTHON cannot use CUDA (torch.cuda.is_available() is False); install a" \
    "CUDA build of torch, or set PYTHON to an interpreter that has one" >&2
  exit 2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vireid-gpu-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export TORCHINDUCTOR_CACHE_DIR="$WORK/inductor" TRITON_CACHE_DIR="$WORK/triton"
export HF_HUB_OFFLINE=1 PYTHONWARNINGS=ignore

echo "== vireid-zoo GPU benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv
"$PYTHON" -c "import torch, lightning, vireid_zoo; print(f'torch {torch.__version__}, CUDA \
{torch.version.cuda}, lightning {lightning.__version__}, vireid-zoo {vireid_zoo.__version__}')"

# step LIMIT_SECONDS ARGS...: one gpu_bench.py measurement; a failure is reported, not fatal.
step() {
  local limit=$1
  shift
  echo "-- $* (at most ${limit} s)"
  if ! timeout --kill-after=10 "$limit" "$PYTHON" "$HERE/gpu_bench.py" "$@" --work "$WORK" \
    >"$WORK/step.log" 2>&1; then
    echo "   failed or timed out; its last lines:"
    tail -n 5 "$WORK/step.log" | sed 's/^/   /'
  fi
}

# Worst case 40 + 40 + 40 + 200 + 30 + 60 s of steps: under 8 minutes with the start-up.
step 40 variant fp32
step 40 variant bf16
step 40 variant channels_last
step 200 variant compile  # most of it compiling the training and the extraction graphs
step 30 ddp --devices 1
if [ "$GPUS" -gt 1 ]; then
  step 60 ddp --devices "$GPUS"
fi

echo
echo "== Results (ratios against the baselines of this run)"
"$PYTHON" "$HERE/gpu_bench.py" report --work "$WORK" --gpus "$GPUS"
