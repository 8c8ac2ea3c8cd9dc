#!/usr/bin/env bash
# Train on all GPUs of one machine (pmap splits the global batch over them).
#
#   launch/local_gpus.sh CONFIG WORKDIR [--config.field=value ...]
#
# Needs a CUDA build of jax: pip install 'jax[cuda12]==0.10.2'.
# CUDA_VISIBLE_DEVICES selects the GPUs; config.batch_size must divide by their number.
# DRY_RUN=1 prints the command it would run, and runs nothing.
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,8p' "$0"; exit 2
fi
CONFIG=$1; WORKDIR=$2; shift 2
cd "$(dirname "$0")/.."
export XLA_PYTHON_CLIENT_PREALLOCATE=false
CMD=(python3 -m clustercnn_jax.main --config="$CONFIG" --workdir="$WORKDIR" "$@")
if [ "${DRY_RUN:-0}" = 1 ]; then
  echo "XLA_PYTHON_CLIENT_PREALLOCATE=false $(printf '%q ' "${CMD[@]}")"; exit 0
fi
exec "${CMD[@]}"
