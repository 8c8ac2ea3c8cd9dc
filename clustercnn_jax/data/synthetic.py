"""A procedurally generated face-age dataset: the demo's no-download default.

These are drawn cartoons, not photographs (we may not ship real faces). Each
image is a face whose appearance carries age cues a network can learn:

* proportions: children have rounder faces, larger eyes and eyes set low
  (a big forehead); the eye line rises as the face grows until about 18;
* wrinkles: forehead lines, crow's feet and nasolabial folds from about 30;
* hair: greys from about 35 (with a per-person offset), receding hairlines in
  some men from about 45, beards in some adult men, age spots after 50.

On top of that, four appearance *modes* (skin tone, light direction and colour,
background) plus per-image scale, position, brightness and noise give the
cluster module several distinct populations to separate. Ages are uniform in
[min_age, max_age]; images are deterministic in the seed.

With ``mode_ageing='opposed'`` the modes also map appearance to age differently: in
modes 1 and 3 every cue runs backwards (a face drawn with a child's proportions and
no wrinkles is old, a grey, wrinkled one young). No single monotone map from the age
cues to age fits every mode, while one per mode does: a task for a module that routes
each mode to its own branch against one shared layer, end to end (``configs/demo.py:opposed``)
or on fixed features (``:opposed,frozen``); docs/cluster_module.md has the study.
"""

from typing import NamedTuple, Tuple

import numpy as np

# Per mode: skin RGB, light direction (x, y), light strength, light tint RGB, background RGB.
_MODES = (
    ((0.93, 0.78, 0.66), (0.0, -1.0), 0.15, (1.00, 1.00, 1.00), (0.55, 0.65, 0.80)),
    ((0.55, 0.38, 0.27), (-1.0, 0.0), 0.45, (1.05, 0.95, 0.85), (0.85, 0.82, 0.70)),
    ((0.80, 0.62, 0.48), (1.0, 0.3), 0.55, (0.85, 0.92, 1.10), (0.25, 0.25, 0.30)),
    ((0.70, 0.52, 0.40), (0.0, 1.0), 0.30, (1.10, 1.00, 0.80), (0.40, 0.60, 0.45)),
)
_HAIR = np.array([(0.10, 0.07, 0.05), (0.30, 0.18, 0.10), (0.65, 0.50, 0.25),
                  (0.05, 0.05, 0.05)], np.float32)


class FaceAgeArrays(NamedTuple):
  """Images (N, H, W, 3) uint8 and ages (N,) int32, plus the hidden mode per image."""
  images: np.ndarray
  ages: np.ndarray
  modes: np.ndarray


def _soft(signed: np.ndarray, softness: float) -> np.ndarray:
  """A mask from a signed distance (negative inside) with an anti-aliased edge."""
  return np.clip(0.5 - signed / softness, 0.0, 1.0)


def _ellipse(u, v, cx, cy, rx, ry, softness):
  r = np.sqrt(((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2)
  return _soft((r - 1.0) * np.minimum(rx, ry), softness)


def _draw(rng: np.random.Generator, ages: np.ndarray, modes: np.ndarray,
          size: int) -> np.ndarray:
  n = ages.shape[0]
  col = lambda a: a[:, None, None]
  lin = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
  v, u = np.meshgrid(lin, lin, indexing="ij")
  u, v = u[None], v[None]
  px = 2.0 / size  # one pixel in these coordinates
  a = ages.astype(np.float32)
  growth = np.clip(a / 18.0, 0.0, 1.0)
  old = np.clip((a - 30.0) / 45.0, 0.0, 1.0)
  grey = np.clip((a - 35.0) / 35.0 + rng.normal(0.0, 0.12, n), 0.0, 1.0)
  male = rng.random(n) < 0.5

  scale = rng.uniform(0.72, 1.0, n)
  cx, cy = rng.uniform(-0.08, 0.08, n), rng.uniform(-0.06, 0.08, n)
  ry = 0.72 * scale
  rx = ry * (0.93 - 0.18 * growth) * rng.uniform(0.95, 1.05, n)
  C = [col(t) for t in (cx, cy, rx, ry)]
  cxc, cyc, rxc, ryc = C

  mode = [_MODES[m] for m in modes]
  skin = np.array([m[0] for m in mode], np.float32) * rng.uniform(0.92, 1.08, (n, 1))
  light_dir = np.array([m[1] for m in mode], np.float32)
  light_strength = np.array([m[2] for m in mode], np.float32)
  tint = np.array([m[3] for m in mode], np.float32)
  background = np.array([m[4] for m in mode], np.float32) * rng.uniform(0.85, 1.15, (n, 1))
  hair = _HAIR[rng.integers(0, len(_HAIR), n)]
  hair = hair * (1 - grey[:, None]) + np.array([0.80, 0.80, 0.82]) * grey[:, None]

  face = _ellipse(u, v, cxc, cyc, rxc, ryc, px)
  img = background[:, None, None, :] * (1 - face[..., None]) + skin[:, None, None, :] * face[..., None]

  # Wrinkles darken the skin along thin sinusoidal lines; depth grows with age.
  depth = col(old * rng.uniform(0.7, 1.0, n)) * 0.35
  eye_y = cyc + ryc * col(0.14 - 0.26 * growth)
  eye_dx = rxc * 0.42
  hairline = cyc - ryc * col(0.62 + 0.3 * male * np.clip((a - 45.0) / 30.0, 0, 1)
                             * rng.uniform(0.5, 1.0, n))
  forehead = (v > hairline + 0.04) & (v < eye_y - 0.12 * ryc) & (np.abs(u - cxc) < 0.6 * rxc)
  lines = np.clip(np.cos((v - cyc) / (0.045 * ryc) * np.pi), 0, 1) ** 6
  shade = forehead * lines
  for side in (-1.0, 1.0):
    ex = cxc + side * eye_dx
    dx, dy = u - ex, v - eye_y
    r = np.sqrt(dx ** 2 + dy ** 2)
    ring = (r > 0.13 * ryc) & (r < 0.24 * ryc) & (side * dx > 0.05 * ryc)
    shade = shade + ring * np.clip(np.cos(np.arctan2(dy, np.abs(dx)) * 9.0), 0, 1) ** 4
    # Nasolabial fold: a slanted line from beside the nose to the mouth corner.
    t = (v - (cyc + 0.1 * ryc)) / (0.35 * ryc)
    fold_x = cxc + side * rxc * (0.22 + 0.12 * t)
    shade = shade + ((t > 0) & (t < 1)) * np.exp(-((u - fold_x) / (0.018 * ryc)) ** 2)
  img = img * (1 - (face * depth * np.clip(shade, 0, 1))[..., None])

  # Age spots after 50.
  spots = col(np.clip((a - 50.0) / 25.0, 0, 1))
  for _ in range(5):
    sx = cxc + rxc * col(rng.uniform(-0.7, 0.7, n))
    sy = cyc + ryc * col(rng.uniform(-0.5, 0.6, n))
    img = img * (1 - (0.3 * spots * face * _ellipse(u, v, sx, sy, 0.04 * ryc, 0.04 * ryc, px))[..., None])

  # Eyes: sclera and iris; children's eyes are larger.
  eye_r = ryc * col(0.13 - 0.04 * growth)
  for side in (-1.0, 1.0):
    sclera = _ellipse(u, v, cxc + side * eye_dx, eye_y, eye_r * 1.3, eye_r * 0.8, px)
    iris = _ellipse(u, v, cxc + side * eye_dx, eye_y, eye_r * 0.55, eye_r * 0.55, px)
    img = img * (1 - sclera[..., None]) + 0.95 * sclera[..., None]
    img = img * (1 - iris[..., None]) + 0.12 * iris[..., None]
    brow = _ellipse(u, v, cxc + side * eye_dx, eye_y - eye_r * 1.6, eye_r * 1.5, eye_r * 0.25, px)
    img = img * (1 - brow[..., None]) + (hair[:, None, None, :] * 0.8) * brow[..., None]

  mouth_y = cyc + ryc * col(0.52 - 0.06 * growth)
  mouth = _ellipse(u, v, cxc, mouth_y, rxc * col(0.28 + 0.1 * growth), 0.035 * ryc, px)
  img = img * (1 - mouth[..., None]) + np.array([0.45, 0.15, 0.15]) * mouth[..., None]

  # Hair: a cap above the hairline and around the face.
  cap = _ellipse(u, v, cxc, cyc - 0.1 * ryc, rxc * 1.15, ryc * 1.05, px)
  hair_mask = cap * np.clip(1 - face + (v < hairline), 0, 1)
  beard = (male & (a > 16) & (rng.random(n) < 0.4)).astype(np.float32)
  beard_mask = col(beard) * face * _soft(mouth_y - 0.1 * ryc - v, 2 * px)
  hair_mask = np.clip(hair_mask + 0.85 * beard_mask * (1 - mouth), 0, 1)
  img = img * (1 - hair_mask[..., None]) + hair[:, None, None, :] * hair_mask[..., None]

  # Lighting, brightness, noise.
  light = 1.0 + col(light_strength) * (col(light_dir[:, 0]) * u + col(light_dir[:, 1]) * v)
  img = img * light[..., None] * tint[:, None, None, :] * rng.uniform(0.8, 1.15, (n, 1, 1, 1))
  img = img + rng.normal(0.0, 0.03, img.shape)
  return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


MODE_AGEING = ("shared", "opposed")


def ages_and_modes(num: int, seed: int = 0, min_age: int = 1,
                   max_age: int = 80) -> Tuple[np.ndarray, np.ndarray]:
  """The ages and hidden modes ``generate`` draws for these arguments, without drawing
  the images (what a study of the clusters compares them with)."""
  rng = np.random.default_rng(seed)
  ages = rng.integers(min_age, max_age + 1, num).astype(np.int32)
  return ages, rng.integers(0, len(_MODES), num).astype(np.int32)


def apparent_ages(ages: np.ndarray, modes: np.ndarray, min_age: int, max_age: int,
                  mode_ageing: str) -> np.ndarray:
  """The age each face's cues are drawn at: its age, or under 'opposed' in the odd modes
  its mirror image in [min_age, max_age]."""
  if mode_ageing not in MODE_AGEING:
    raise ValueError(f"data.synthetic.mode_ageing={mode_ageing!r}: use one of {MODE_AGEING}.")
  if mode_ageing == "shared":
    return ages
  return np.where(modes % 2 == 1, min_age + max_age - ages, ages).astype(ages.dtype)


def generate(num: int, image_size: int = 64, seed: int = 0, min_age: int = 1,
             max_age: int = 80, chunk: int = 256,
             mode_ageing: str = "shared") -> FaceAgeArrays:
  """``num`` synthetic faces; identical for identical arguments."""
  ages, modes = ages_and_modes(num, seed, min_age, max_age)
  drawn = apparent_ages(ages, modes, min_age, max_age, mode_ageing)
  images = np.empty((num, image_size, image_size, 3), np.uint8)
  for start in range(0, num, chunk):
    sl = slice(start, start + chunk)
    images[sl] = _draw(np.random.default_rng([seed, start]), drawn[sl], modes[sl], image_size)
  return FaceAgeArrays(images, ages, modes)


def splits(num_train: int, num_test: int, image_size: int, seed: int = 0,
           max_age: int = 80, mode_ageing: str = "shared") -> Tuple[FaceAgeArrays, FaceAgeArrays]:
  """Disjoint train and test sets (different generator seeds)."""
  return (generate(num_train, image_size, seed=2 * seed, max_age=max_age,
                   mode_ageing=mode_ageing),
          generate(num_test, image_size, seed=2 * seed + 1, max_age=max_age,
                   mode_ageing=mode_ageing))
