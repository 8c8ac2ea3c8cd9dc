"""Backbones as a sequence of named blocks, so a model can run part of one.

Partial fine-tuning (``model.train_from``) freezes the blocks before a named
one: their output is computed once per face and cached, and only the blocks
from that one on run in training. Each backbone lists its blocks with
``blocks(train)``; a block's ``apply`` creates its submodules only when
called, so the list can be read from an unbound module (for names and
parameters) and skipping a block skips its submodules.
"""

from typing import Callable, List, NamedTuple, Optional, Sequence, Set

import jax.numpy as jnp


class Block(NamedTuple):
  name: str
  params: Sequence[str]  # the top-level variable names (of the backbone) this block owns
  apply: Callable[[jnp.ndarray], jnp.ndarray]


def block_index(blocks: Sequence[Block], name: str) -> int:
  names = [b.name for b in blocks]
  if name not in names:
    raise ValueError(f"Unknown block {name!r}; this backbone's blocks are {names} "
                     "(--config.model.train_from=...).")
  return names.index(name)


def run_blocks(blocks: Sequence[Block], x: jnp.ndarray, start: Optional[str] = None,
               stop: Optional[str] = None) -> jnp.ndarray:
  """Runs the blocks from ``start`` (inclusive) up to ``stop`` (exclusive)."""
  i = block_index(blocks, start) if start else 0
  j = block_index(blocks, stop) if stop else len(blocks)
  for block in blocks[i:j]:
    x = block.apply(x)
  return x


def params_before(blocks: Sequence[Block], name: str) -> Set[str]:
  """The variable names owned by the blocks before ``name``: what freezing them freezes."""
  return {p for block in blocks[:block_index(blocks, name)] for p in block.params}


def names(blocks: Sequence[Block]) -> List[str]:
  return [b.name for b in blocks]
