"""A PyTorch checkpoint's tensors, by name: safetensors (single or sharded), a `.bin`/`.pt`/`.pth`
file loaded only with `torch.load(weights_only=True)`, or a `save_pretrained` directory.

Pickles are never loaded any other way: weights_only refuses anything but tensors and plain
containers, so a malicious or code-carrying file is an input error, not code that runs.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..readers.base import (
    EXTRA_FILE_NAMES,
    TOKENIZER_FILE_NAMES,
    read_json_object,
    shard_index,
    sibling_files,
)
from ..writer import INDEX_FILE, SAFETENSORS_DTYPES, SINGLE_FILE

PICKLED = "pytorch_model.bin"
PICKLED_INDEX = "pytorch_model.bin.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth")
# safetensors dtype code → the dtype's name (torch and numpy agree on these names)
DTYPE_NAMES = {code: np.dtype(key).name for key, code in SAFETENSORS_DTYPES.items()} | {
    "BF16": "bfloat16"
}


@dataclass(frozen=True)
class StoredTensor:
    name: str
    shape: tuple[int, ...]
    dtype: str  # torch dtype name, e.g. "float32"
    load: Callable[[], np.ndarray] = field(repr=False, compare=False)


@dataclass
class Checkpoint:
    path: Path
    tensors: dict[str, StoredTensor]
    config: dict[str, Any] | None  # config.json next to the weights, if any
    notes: list[str] = field(default_factory=list)  # e.g. "used its 'state_dict' entry"
    side_files: list[Path] = field(default_factory=list)  # tokenizer files etc., copied by --fix


def _to_numpy(tensor) -> np.ndarray:
    return tensor.detach().cpu().contiguous().numpy()


def _safetensors(files: list[Path]) -> dict[str, StoredTensor]:
    from safetensors import SafetensorError, safe_open

    tensors = {}
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as f:
                for name in f.keys():
                    sl = f.get_slice(name)
                    shape = tuple(int(d) for d in sl.get_shape())
                    dtype = DTYPE_NAMES.get(sl.get_dtype(), sl.get_dtype())
                    tensors[name] = StoredTensor(
                        name, shape, dtype, lambda file=file, name=name: _load_one(file, name)
                    )
        except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
            raise InputError(f"not a readable safetensors file ({exc})", file) from None
    return tensors


def _load_one(file: Path, name: str) -> np.ndarray:
    from safetensors import safe_open

    with safe_open(str(file), framework="pt") as f:
        return _to_numpy(f.get_tensor(name))


def _unwrap(obj: Any, containers: tuple[str, ...], notes: list[str], file: Path) -> dict:
    import torch

    if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in containers:
            if isinstance(obj.get(key), dict):
                notes.append(f"the file is a training checkpoint; used its '{key}' entry")
                return _unwrap(obj[key], containers, notes, file)
    if not isinstance(obj, dict):
        raise InputError(f"holds a {type(obj).__name__}, not a state_dict", file)
    skipped = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if skipped:
        notes.append(f"entries that are not tensors were left out: {skipped[:5]}")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _pickled(files: list[Path], containers: tuple[str, ...], notes: list[str]):
    import pickle

    import torch

    tensors = {}
    for file in files:
        try:
            # mmap keeps the tensors on disk until --fix reads them, one at a time; only the
            # zip format (torch.save's default since 1.6) allows it
            mmap = zipfile.is_zipfile(file)
            obj = torch.load(str(file), map_location="cpu", weights_only=True, mmap=mmap)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            raise InputError(
                f"does not load with torch.load(weights_only=True) ({first}); tf2pt never "
                "unpickles anything else",
                file,
                "re-save the state_dict with torch.save(model.state_dict()) or as safetensors",
            ) from None
        for name, t in _unwrap(obj, containers, notes, file).items():
            dtype = str(t.dtype).removeprefix("torch.")
            tensors[name] = StoredTensor(name, tuple(t.shape), dtype, lambda t=t: _to_numpy(t))
    return tensors


def _weight_files(path: Path) -> tuple[str, list[Path]]:
    """("safetensors" | "pickle", files) for a file or a save_pretrained directory."""
    if path.is_file():
        if path.suffix == ".safetensors":
            return "safetensors", [path]
        if path.name.endswith(".index.json"):
            kind = "safetensors" if "safetensors" in path.name else "pickle"
            return kind, shard_index(path)[1]
        if path.suffix in PICKLE_SUFFIXES:
            return "pickle", [path]
        raise InputError(
            "not a PyTorch checkpoint (.safetensors, .bin, .pt, .pth or a save_pretrained dir)",
            path,
            "for a TensorFlow/Keras checkpoint use tf2pt convert",
        )
    for name in (SINGLE_FILE, INDEX_FILE, PICKLED, PICKLED_INDEX):
        if (path / name).is_file():
            return _weight_files(path / name)
    raise InputError(
        "directory holds no PyTorch weights (model.safetensors, pytorch_model.bin or their "
        "sharded index)",
        path,
    )


def open_checkpoint(path: Path, containers: tuple[str, ...]) -> Checkpoint:
    if not path.exists():
        raise InputError("no such file or directory", path)
    kind, files = _weight_files(path)
    notes: list[str] = []
    tensors = _safetensors(files) if kind == "safetensors" else _pickled(files, containers, notes)
    if not tensors:
        raise InputError("holds no tensors", path)
    directory = path if path.is_dir() else path.parent
    config_path = directory / "config.json"
    config = read_json_object(config_path) if config_path.is_file() else None
    side_files = sibling_files(directory, TOKENIZER_FILE_NAMES + EXTRA_FILE_NAMES)
    return Checkpoint(path, tensors, config, notes, side_files)
