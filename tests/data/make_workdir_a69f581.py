"""Made the workdir fixture tests/data/workdir_a69f581 with the code of commit a69f581 (before the
config was regrouped): python make_old.py OUT."""
import sys
import numpy as np
from configs import demo
from clustercnn_jax import train, load

out = sys.argv[1]
config = demo.get_config("runlocal")
config.model.backbone_kwargs.widths = (8, 16)
config.model.cluster_features = 8
config.keep_checkpoints = 1
train.train_and_evaluate(config, out)
crops = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
pred = load(out).predict(crops)
np.savez(out + "/expected.npz", crops=crops, ages=np.asarray(pred.ages if hasattr(pred, "ages") else pred))
print(pred)
