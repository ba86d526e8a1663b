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
    embedding_size=6,  # ALBERT, ELECTRA: factorised embeddings
    num_hidden_groups=2,  # ALBERT: {G} layer groups of {I} inner layers
    inner_group_num=2,
    dim=8,  # DistilBERT's names for the widths and the layer count
    hidden_dim=12,
    n_layers=2,
    n_heads=2,
)
PLACEHOLDER_DIMS = {"L": "num_hidden_layers", "G": "num_hidden_groups", "I": "inner_group_num"}


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


def listing_for(
    expanded_head: dict, dims: dict[str, int] = DIMS, placeholders: dict[str, str] | None = None
) -> dict[str, tuple]:
    """Every source tensor an expanded head (tests/golden/expand.py) wants, with its shape, for
    every layer (`placeholders`: the table's, placeholder → config key); the stored copies it
    declares, with their original's shape."""
    out: dict[str, tuple] = {}
    for rule in expanded_head["rules"]:
        shape = tuple(d if isinstance(d, int) else dims[d] for d in rule["shape"])
        src_shape = _source_shape(rule["ops"], shape, dims)
        for name in _every_index(rule["src"], dims, placeholders or PLACEHOLDER_DIMS):
            out[name] = src_shape
    for dup in expanded_head["duplicates"]:
        out[dup["src"]] = out[dup["same_as"]]
    return out


def _every_index(pattern: str, dims: dict[str, int], placeholders: dict[str, str]) -> list[str]:
    """The pattern with each placeholder it holds ({L}, {_L}, {G}, {I}) over its whole range."""
    names = [pattern]
    for key, dim in placeholders.items():
        if "{" + key + "}" in pattern or "{_" + key + "}" in pattern:
            names = [_fill(n, key, i) for n in names for i in range(dims[dim])]
    return names


def _fill(pattern: str, key: str, index: int) -> str:
    suffix = f"_{index}" if index else ""
    return pattern.replace("{" + key + "}", str(index)).replace("{_" + key + "}", suffix)
