"""Synthetic sources for the fast tier: a tensor listing (names and shapes, no bytes, no files)
that a table's head should account for, built from the source side of each rule.

A source tensor's shape is worked out backwards from the PyTorch shape the rule declares, per op
(a test-side table of what each op does to a shape, written independently of converter.ops).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from converter.readers.base import Source, SourceTensor

DIMS = dict(
    vocab_size=50,
    hidden_size=8,
    num_attention_heads=2,
    intermediate_size=12,
    max_position_embeddings=20,
    type_vocab_size=2,
    num_hidden_layers=2,
    num_labels=3,
)


def _unread(index: Any = None) -> np.ndarray:
    raise AssertionError("the fast tier never reads tensor data")


def source_of(listing: dict[str, tuple[int, ...]], layout: str = "synthetic", config=None):
    """A Source holding these (name → shape) tensors, readable by no one."""
    tensors = [
        SourceTensor(name, tuple(shape), np.dtype("<f4"), _unread)
        for name, shape in listing.items()
    ]
    return Source(Path("synthetic"), layout, dict(config or {}), None, tensors, [])


def _source_shape(ops: list[str], shape: tuple[int, ...], dims: dict[str, int]) -> tuple:
    heads = dims["num_attention_heads"]
    for op in reversed(ops):
        if op == "Transpose()":
            shape = (shape[1], shape[0])
        elif op == "MergeHeadsIn()":  # [out, in] ← [in, heads, head_dim]
            shape = (shape[1], heads, shape[0] // heads)
        elif op == "MergeHeadsOut()":  # [out, in] ← [heads, head_dim, out]
            shape = (heads, shape[1] // heads, shape[0])
        elif op == "Flatten()":
            shape = (heads, shape[0] // heads)
        elif op.startswith("PrependRows(rows="):
            shape = (shape[0] - int(op.split("=")[1].rstrip(")")), *shape[1:])
        else:
            raise AssertionError(f"no inverse shape for {op} in the test helper")
    return shape


def listing_for(expanded_head: dict, dims: dict[str, int] = DIMS) -> dict[str, tuple]:
    """Every source tensor an expanded head (tests/golden/expand.py) wants, with its shape, for
    every layer; the stored copies it declares, with their original's shape."""
    out: dict[str, tuple] = {}
    layers = range(dims["num_hidden_layers"])
    for rule in expanded_head["rules"]:
        shape = tuple(d if isinstance(d, int) else dims[d] for d in rule["shape"])
        src_shape = _source_shape(rule["ops"], shape, dims)
        for layer in layers if "{L}" in rule["src"] or "{_L}" in rule["src"] else [None]:
            out[_fill(rule["src"], layer)] = src_shape
    for dup in expanded_head["duplicates"]:
        out[dup["src"]] = out[dup["same_as"]]
    return out


def _fill(pattern: str, layer: int | None) -> str:
    if layer is None:
        return pattern
    return pattern.replace("{L}", str(layer)).replace("{_L}", f"_{layer}" if layer else "")
