#!/usr/bin/env bash
# Train on a Cloud TPU VM pod slice: the same command runs on every worker.
#
#   launch/tpu_pod.sh TPU_NAME ZONE CONFIG WORKDIR [--config.field=value ...]
#   e.g. launch/tpu_pod.sh my-v4-32 us-central2-b configs/morph.py gs://bucket/morph/split0
#
# WORKDIR must be shared by all workers (a gs:// bucket): orbax writes one
# checkpoint from all hosts and every host resumes from it after preemption.
# Each host reads its own slice of every global batch (jax.process_index()),
# so config.batch_size is the global batch over all chips of the slice.
# A preempted slice gets SIGTERM: the run checkpoints and exits; run the same
# command again to resume.
# DRY_RUN=1 prints every command it would run, and runs none.
set -euo pipefail
if [ $# -lt 4 ]; then
  sed -n '2,14p' "$0"; exit 2
fi
run() {
  if [ "${DRY_RUN:-0}" = 1 ]; then printf '%q ' "$@"; echo; else "$@"; fi
}
TPU_NAME=$1; ZONE=$2; CONFIG=$3; WORKDIR=$4; shift 4
cd "$(dirname "$0")/.."

# Ship this checkout (committed files) to every worker, then install and run.
run git archive --format=tar.gz -o /tmp/clustercnn_jax.tar.gz HEAD
run gcloud compute tpus tpu-vm scp /tmp/clustercnn_jax.tar.gz "$TPU_NAME": --zone="$ZONE" --worker=all
run gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=all --command "
  set -e
  mkdir -p clustercnn_jax && tar -xzf clustercnn_jax.tar.gz -C clustercnn_jax && cd clustercnn_jax
  python3 -m pip install -q -r requirements.txt 'jax[tpu]==0.10.2' && python3 -m pip install -q --no-deps -e .
  python3 -m clustercnn_jax.main --multihost --config=$CONFIG --workdir=$WORKDIR $*
"
