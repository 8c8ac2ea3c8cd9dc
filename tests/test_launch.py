"""Launch scripts: DRY_RUN=1 prints every command they would run and runs none."""

import os
import subprocess

from conftest import ROOT


def dry_run(script, *args):
  env = dict(os.environ, DRY_RUN="1")
  return subprocess.run(["bash", os.path.join(ROOT, "launch", script), *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=60)


def test_tpu_pod_dry_run_prints_ship_and_run_on_every_worker():
  archive = "/tmp/clustercnn_jax.tar.gz"  # what a real run's first command writes
  if os.path.exists(archive):
    os.remove(archive)
  result = dry_run("tpu_pod.sh", "my-v4-32", "us-central2-b", "configs/morph.py",
                   "gs://bucket/morph/split0", "--config.data.split.seed=3")
  assert result.returncode == 0, result.stderr
  lines = result.stdout.strip().splitlines()
  assert lines[0].startswith("git archive") and "HEAD" in lines[0]
  assert lines[1].startswith("gcloud compute tpus tpu-vm scp") and "--worker=all" in lines[1]
  assert lines[2].startswith("gcloud compute tpus tpu-vm ssh") and "--worker=all" in lines[2]
  assert "--multihost --config=configs/morph.py --workdir=gs://bucket/morph/split0" in result.stdout
  assert "--config.data.split.seed=3" in result.stdout
  assert len(lines) == 3 and not os.path.exists(archive)  # printed, not run


def test_local_gpus_dry_run_prints_the_training_command():
  result = dry_run("local_gpus.sh", "configs/morph.py", "/data/runs/morph",
                   "--config.batch_size=256")
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == ("XLA_PYTHON_CLIENT_PREALLOCATE=false python3 -m "
                                   "clustercnn_jax.main --config=configs/morph.py "
                                   "--workdir=/data/runs/morph --config.batch_size=256")


def test_missing_arguments_print_usage():
  result = dry_run("tpu_pod.sh", "only-one")
  assert result.returncode == 2 and "TPU_NAME ZONE CONFIG WORKDIR" in result.stdout
