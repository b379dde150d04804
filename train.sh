#!/usr/bin/env bash
# Set up (the first time) and train: ./train.sh [train_cifar10.py flags], e.g.
#   ./train.sh --num-gpus 1 --epochs 5
#   ./train.sh --gpu-report      Python, numpy, the CUDA libraries found and MXNet's view of the GPUs
. "$(dirname "$0")/tools/env.sh"
ensure_env
ensure_horovod
if [ "${1:-}" = "--gpu-report" ]; then
  cd "$ROOT" && exec "$VENV/bin/python" -m tools.gpu_report
fi
exec "$VENV/bin/python" "$ROOT/train_cifar10.py" "$@"
