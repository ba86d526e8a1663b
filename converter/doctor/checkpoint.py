"""A PyTorch checkpoint's tensors, by name: safetensors (single or sharded), a torch.save file
(any name: `.bin`, `.pt`, a Lightning `.ckpt`, a fairseq `model.pt` — recognised by its content)
loaded only with `torch.load(weights_only=True)`, or a `save_pretrained` directory.

Pickles are never loaded any other way: weights_only refuses anything but tensors, plain
containers and the few plain-value classes fairseq stores (mappings/doctor/fairseq.yaml), so a
malicious or code-carrying file is an input error naming the class it refused, not code that runs.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..readers.base import (
    EXTRA_FILE_NAMES,
    INDEX_FILE,
    SAFETENSORS_DTYPES,
    SINGLE_FILE,
    TOKENIZER_FILE_NAMES,
    read_json_object,
    shard_index,
    sibling_files,
)
from . import fairseq

PICKLED = "pytorch_model.bin"
PICKLED_INDEX = "pytorch_model.bin.index.json"
PICKLE_PROTOCOL_OPCODE = b"\x80"  # a pickle's first byte (protocol 2+): torch.save's legacy format
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


def _trainer(obj: dict, trainers: tuple[dict[str, Any], ...]) -> str:
    """ "a PyTorch Lightning 2.4.0 checkpoint (epoch 3, global_step 1200)", or "a training
    checkpoint" when no known trainer's marker key is in it."""
    for trainer in trainers:
        if trainer["marker"] in obj:
            facts = ", ".join(f"{k} {obj[k]}" for k in trainer.get("facts", ()) if k in obj)
            version = obj[trainer["marker"]]
            return f"a {trainer['name']} {version} checkpoint" + (f" ({facts})" if facts else "")
    return "a training checkpoint"


def _unwrap(obj: Any, book, notes: list[str], file: Path) -> dict:
    import torch

    if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in book.containers:
            if isinstance(obj.get(key), dict):
                notes.append(f"the file is {_trainer(obj, book.trainers)}; used its '{key}' entry")
                return _unwrap(obj[key], book, notes, file)
    if not isinstance(obj, dict):
        raise InputError(f"holds a {type(obj).__name__}, not a state_dict", file)
    skipped = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if skipped:
        notes.append(f"entries that are not tensors were left out: {skipped[:5]}")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _load_error(exc: Exception, file: Path) -> InputError:
    """The refusal, naming the class the pickle wanted when that was the reason."""
    text = str(exc).strip()
    refused = re.search(r"GLOBAL ([\w.]+)", text)
    allowed = ", ".join(fairseq.load_spec().safe_globals)
    if refused:
        why = (
            f"it pickles {refused.group(1)}, which is not a tensor, a plain container or an "
            f"allowed class ({allowed})"
        )
    else:
        why = (text.splitlines()[0][:200] if text else type(exc).__name__).rstrip(".")
    return InputError(
        f"does not load with torch.load(weights_only=True): {why}; tf2pt never unpickles "
        "anything else",
        file,
        "re-save the state_dict with torch.save(model.state_dict()) or as safetensors",
    )


def _torch_load(file: Path):
    import torch

    try:
        # mmap keeps the tensors on disk until --fix reads them, one at a time; only the
        # zip format (torch.save's default since 1.6) allows it
        mmap = zipfile.is_zipfile(file)
        with torch.serialization.safe_globals(fairseq.safe_classes()):
            return torch.load(str(file), map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # a damaged pickle can fail anywhere in the unpickler
        raise _load_error(exc, file) from None


def _pickled(files: list[Path], book, notes: list[str]) -> tuple[dict, dict | None]:
    """(tensors, the config a fairseq file stores, else None)."""
    import torch

    tensors, config = {}, None
    for file in files:
        obj = _torch_load(file)
        if fairseq.is_fairseq(obj):
            state, split = fairseq.split_fused(obj[fairseq.load_spec().weights])
            notes += split
            shapes = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
            config, more = fairseq.fairseq_config(obj, shapes, file)
            notes += more
            obj = state
        for name, t in _unwrap(obj, book, notes, file).items():
            dtype = str(t.dtype).removeprefix("torch.")
            tensors[name] = StoredTensor(name, tuple(t.shape), dtype, lambda t=t: _to_numpy(t))
    return tensors, config


def _sniff(path: Path) -> str | None:
    """ "pickle" for a torch.save file (zip or legacy pickle), "safetensors" for a safetensors
    file (8-byte header length, then the JSON header), by content: names lie (`last.ckpt`)."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    if zipfile.is_zipfile(path) or head[:1] == PICKLE_PROTOCOL_OPCODE:
        return "pickle"
    if len(head) == 9 and head[8:9] == b"{":
        return "safetensors"
    return None


def _weight_files(path: Path) -> tuple[str, list[Path]]:
    """("safetensors" | "pickle", files) for a file or a save_pretrained directory."""
    if path.is_file():
        if path.suffix == ".safetensors":
            return "safetensors", [path]
        if path.name.endswith(".index.json"):
            kind = "safetensors" if "safetensors" in path.name else "pickle"
            return kind, shard_index(path)[1]
        kind = _sniff(path)
        if kind is not None:
            return kind, [path]
        raise InputError(
            "not a PyTorch checkpoint (neither safetensors nor a torch.save file, by its "
            "content) nor a save_pretrained dir",
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


def open_checkpoint(path: Path, book) -> Checkpoint:
    """`book` is the doctor's RepairBook (containers, trainers)."""
    if not path.exists():
        raise InputError("no such file or directory", path)
    kind, files = _weight_files(path)
    notes: list[str] = []
    config = None
    if kind == "safetensors":
        tensors = _safetensors(files)
    else:
        tensors, config = _pickled(files, book, notes)
    if not tensors:
        raise InputError("holds no tensors", path)
    directory = path if path.is_dir() else path.parent
    if config is not None:  # a fairseq checkpoint: its dictionary numbers the embedding rows
        rows = config.get("vocab_size")
        ids, more = fairseq.dictionary_ids(directory, rows if isinstance(rows, int) else None)
        config |= ids
        notes += more
    config_path = directory / "config.json"
    if config is None and config_path.is_file():
        config = read_json_object(config_path)
    side_files = sibling_files(directory, TOKENIZER_FILE_NAMES + EXTRA_FILE_NAMES)
    return Checkpoint(path, tensors, config, notes, side_files)
