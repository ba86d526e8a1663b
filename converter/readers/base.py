"""What every reader yields: a source description and its tensors, loaded one at a time."""

from __future__ import annotations

import json
import multiprocessing
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, Tf2ptError

# What readers raise on damaged files (h5py, zipfile, …): a malformed file is bad input, not a bug.
MALFORMED = (
    OSError,
    KeyError,
    ValueError,
    TypeError,
    RuntimeError,
    UnicodeDecodeError,
    zipfile.BadZipFile,
    EOFError,
)

# Index into a tensor (a numpy-style tuple of slices) so large tensors can be read in blocks.
Index = tuple[slice, ...] | None


@dataclass(frozen=True)
class SourceTensor:
    """One stored tensor: its canonical name, shape and dtype, and how to read it (lazily)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    read: Callable[[Index], np.ndarray] = field(repr=False, compare=False)
    origin: str = ""  # where it lives (file and internal path), for messages


@dataclass
class Source:
    """A checkpoint as found on disk, before any mapping is applied."""

    path: Path  # what the user pointed at
    layout: str  # e.g. "hf-keras"; selects mapping tables and the TF runner
    config: dict[str, Any]  # the source's own config (HF config.json, bert_config.json, …)
    config_path: Path | None
    tensors: list[SourceTensor]
    weight_files: list[Path]
    tokenizer_files: list[Path] = field(default_factory=list)
    extra_files: list[Path] = field(default_factory=list)  # copied as-is (generation_config.json)
    close: Callable[[], None] = field(default=lambda: None, repr=False)  # release open files
    form: str = ""  # the on-disk form within the layout (".keras", "preset", …), for runners
    own_config: dict[str, Any] | None = None  # the config beside it, when --config replaced it

    def tensor_map(self) -> dict[str, SourceTensor]:
        return {t.name: t for t in self.tensors}


TOKENIZER_FILE_NAMES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "sentencepiece.bpe.model",
    "spiece.model",  # ALBERT, T5, XLNet: the slow tokenizer's SentencePiece model
    "spm.model",
    "bpe.codes",
    "dict.txt",
)
EXTRA_FILE_NAMES = ("generation_config.json",)

# A Hugging Face PyTorch model directory's weights: read by the doctor, written by the writer.
SAFETENSORS_DTYPES = {  # numpy dtype code → safetensors dtype name
    "f2": "F16",
    "f4": "F32",
    "f8": "F64",
    "i1": "I8",
    "i2": "I16",
    "i4": "I32",
    "i8": "I64",
    "u1": "U8",
    "b1": "BOOL",
}
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"


def json_object(text: str, where: Path) -> dict[str, Any]:
    """A config file's text parsed as a JSON object, or an input error naming the file."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(f"not valid JSON ({exc})", where) from None
    if not isinstance(data, dict):
        raise InputError("does not hold a JSON object", where)
    return data


def read_json_object(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read ({exc})", path) from None
    return json_object(text, path)


def shard_index(index_file: Path) -> tuple[dict[str, str], list[Path]]:
    """(tensor name → shard file name, the shard paths) of a sharded checkpoint's index.json;
    every listed shard must exist."""
    try:
        weight_map = json.loads(index_file.read_text())["weight_map"]
        shards = sorted({index_file.parent / f for f in weight_map.values()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"unreadable shard index ({exc})", index_file) from None
    missing = next((s for s in shards if not s.exists()), None)
    if missing is not None:
        raise InputError(
            "shard listed in the index is missing", missing, f"restore it next to {index_file.name}"
        )
    return weight_map, shards


def sibling_files(directory: Path, names: tuple[str, ...]) -> list[Path]:
    """The files among `names` that exist in `directory`, in a stable order."""
    return [directory / n for n in names if (directory / n).is_file()]


STRUCTURE_TIMEOUT_S = 60.0


def _child(conn, fn: Callable, args: tuple) -> None:
    try:
        conn.send(("ok", fn(*args)))
    except Tf2ptError as exc:
        conn.send(("error", (type(exc), exc.what, exc.path, exc.hint)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as a corrupt file
        conn.send(("crash", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()
        os._exit(0)


def isolated(fn: Callable, *args, path: Path, timeout: float | None = None):
    """Run `fn(*args)` (a metadata listing returning plain data) in a forked child process.

    A damaged HDF5 file can make the C library loop forever (seen: a corrupt variable-length
    string heap behind an attribute), and no Python signal interrupts C code. The child can be
    killed; the parent reports the file as corrupt instead of hanging.
    """
    timeout = STRUCTURE_TIMEOUT_S if timeout is None else timeout
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(send, fn, args), daemon=True)
    child.start()
    send.close()
    try:
        if not receive.poll(timeout):
            raise InputError(
                f"no answer after {timeout:.0f} s reading the file's structure",
                path,
                "the file is probably corrupt; re-save it",
            )
        status, payload = receive.recv()
    except EOFError:
        status, payload = "crash", f"reader exited with code {child.exitcode}"
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receive.close()
    if status == "error":
        kind, what, where, hint = payload
        raise kind(what, where, hint)
    if status == "crash":
        raise InputError(
            f"cannot read the file's structure ({payload})",
            path,
            "the file is probably corrupt; re-save it",
        )
    return payload
