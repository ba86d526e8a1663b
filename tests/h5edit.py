"""Helpers that damage a saved tf_model.h5 the way real checkpoints go wrong."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def _names(group) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]


def add_weight(h5_path: Path, group: str, weight_name: str, shape: tuple[int, ...]) -> None:
    with h5py.File(h5_path, "r+") as h5:
        h5[group].create_dataset(weight_name, data=np.ones(shape, dtype=np.float32))
        h5[group].attrs["weight_names"] = [n.encode() for n in _names(h5[group]) + [weight_name]]


def delete_weight(h5_path: Path, group: str, suffix: str) -> str:
    """Remove the one weight of `group` whose name ends with `suffix`; return its full name."""
    with h5py.File(h5_path, "r+") as h5:
        names = _names(h5[group])
        (victim,) = [n for n in names if n.endswith(suffix)]
        del h5[group][victim]
        h5[group].attrs["weight_names"] = [n.encode() for n in names if n != victim]
    return victim


def scale_weight(h5_path: Path, group: str, suffix: str, factor: float) -> None:
    with h5py.File(h5_path, "r+") as h5:
        (name,) = [n for n in _names(h5[group]) if n.endswith(suffix)]
        h5[group][name][...] = h5[group][name][()] * factor


def transform_weight(h5_path: Path, group: str, suffix: str, change) -> None:
    """Replace the one weight of `group` ending with `suffix` by `change(value)` (same shape)."""
    with h5py.File(h5_path, "r+") as h5:
        (name,) = [n for n in _names(h5[group]) if n.endswith(suffix)]
        h5[group][name][...] = change(h5[group][name][()])


def swap_weights(h5_path: Path, group: str, suffix_a: str, suffix_b: str) -> None:
    """Exchange the values of two weights of one shape (stored under each other's names)."""
    with h5py.File(h5_path, "r+") as h5:
        (a,) = [n for n in _names(h5[group]) if n.endswith(suffix_a)]
        (b,) = [n for n in _names(h5[group]) if n.endswith(suffix_b)]
        value_a, value_b = h5[group][a][()], h5[group][b][()]
        h5[group][a][...], h5[group][b][...] = value_b, value_a
