"""Reader registry: each layout contributes a cheap `probe(path)` and a lazy `read(path)`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from . import hf_keras, keras3, tf1, tf2
from .base import INDEX_FILE, SINGLE_FILE, Source, SourceTensor


@dataclass(frozen=True)
class ReaderEntry:
    layout: str
    probe: Callable[[Path], bool]
    read: Callable[[Path], Source]
    describes: str


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl")

READERS: tuple[ReaderEntry, ...] = (
    ReaderEntry(
        hf_keras.LAYOUT,
        hf_keras.probe,
        hf_keras.read,
        "transformers TF save_pretrained: tf_model.h5 or sharded tf_model-*.h5",
    ),
    ReaderEntry(
        keras3.LAYOUT,
        keras3.probe,
        keras3.read,
        "keras-hub / Keras 3: a .keras file, a preset dir or a .weights.h5",
    ),
    ReaderEntry(  # before tf1: a TF2 checkpoint is also a `ckpt-N.index`, told apart by its graph
        tf2.LAYOUT,
        tf2.probe,
        tf2.read,
        "TF2 object-based checkpoint (ckpt-N.index + .data-*) or SavedModel dir (saved_model.pb)",
    ),
    ReaderEntry(
        tf1.LAYOUT,
        tf1.probe,
        tf1.read,
        "TF1 checkpoint (google-research/bert): model.ckpt-N.index + .data-*, bert_config.json",
    ),
)


def _holds_pytorch_weights(path: Path) -> bool:
    """A save_pretrained PyTorch dir (asked only once no reader has claimed the path)."""
    names = (SINGLE_FILE, INDEX_FILE, "pytorch_model.bin")
    return path.is_dir() and any((path / n).is_file() for n in names)


def _already_pytorch(path: Path) -> InputError:
    return InputError(
        "is already a PyTorch checkpoint, not a TensorFlow/Keras one",
        path,
        "convert the TF checkpoint it came from; if it does not load into transformers, "
        f"tf2pt doctor {path} explains why (it never unpickles anything unsafe)",
    )


def open_source(path: str | Path) -> Source:
    """Detect the source layout of `path` and read its tensor list (no tensor data yet)."""
    path = Path(path)
    if not path.exists() and not tf1.probe(path):  # a TF1 prefix names no file itself
        raise InputError("no such file or directory", path)
    if path.suffix in PICKLE_SUFFIXES + (".safetensors",):
        raise _already_pytorch(path)
    for entry in READERS:
        if entry.probe(path):
            return entry.read(path)
    if _holds_pytorch_weights(path):  # only when no TF weights sit beside them
        raise _already_pytorch(path)
    if path.is_dir() and not any(path.iterdir()):
        raise InputError("directory is empty", path, "point at a checkpoint directory or file")
    if path.is_dir() and (path / "config.json").exists():
        raise InputError(
            "has config.json but no weights this tool reads",
            path,
            "expected " + "; ".join(e.describes for e in READERS),
        )
    raise InputError(
        "not a checkpoint this tool recognises",
        path,
        "expected " + "; ".join(e.describes for e in READERS),
    )


__all__ = ["READERS", "Source", "SourceTensor", "open_source"]
