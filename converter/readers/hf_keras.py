"""Reader for checkpoints saved by transformers' TF classes (`TFRoberta*.save_pretrained`).

Two on-disk forms: a single `tf_model.h5` (Keras 2 weight file: one group per top-level layer,
datasets at `<layer>/<model_scope>/<weight>:0`) and sharded `tf_model-0000k-of-0000n.h5` files
with `tf_model.h5.index.json` (datasets named `<weight>:0` with the model scope already removed).
Only h5py is imported: reading a source must not pull in tensorflow or torch.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import h5py
import numpy as np

from ..errors import InputError
from .base import (
    EXTRA_FILE_NAMES,
    MALFORMED,
    TOKENIZER_FILE_NAMES,
    Index,
    Source,
    SourceTensor,
    isolated,
    read_json_object,
    shard_index,
    sibling_files,
)

LAYOUT = "hf-keras"
SINGLE_FILE = "tf_model.h5"
SHARD_INDEX = "tf_model.h5.index.json"


def _weights_dir(path: Path) -> Path | None:
    """The directory holding HF Keras weights for `path`, or None if it does not look like one."""
    if path.is_file() and path.name in (SINGLE_FILE, SHARD_INDEX):
        return path.parent
    if path.is_dir() and ((path / SINGLE_FILE).exists() or (path / SHARD_INDEX).exists()):
        return path
    return None


def probe(path: Path) -> bool:
    return _weights_dir(path) is not None


class _OpenFiles:
    """h5 files opened once per source and kept open while its tensors are read."""

    def __init__(self) -> None:
        self._files: dict[Path, h5py.File] = {}

    def read(self, file: Path, dataset: str, index: Index) -> np.ndarray:
        if file not in self._files:
            self._files[file] = _open_h5(file)
        data = self._files[file][dataset]
        return np.asarray(data[()] if index is None else data[index])

    def close(self) -> None:
        for h5 in self._files.values():
            h5.close()
        self._files.clear()


def _canonical(group: str, weight_name: str) -> str:
    """`roberta` + `tf_roberta_model/roberta/x/kernel:0` → `roberta/x/kernel`.

    The first scope (the model's own name) varies by class and is dropped. A weight stored under
    a group it does not belong to (the MLM head's copy of the embeddings) keeps that group as a
    prefix, so the two copies get distinct names.
    """
    rest = weight_name.split("/", 1)[1] if "/" in weight_name else weight_name
    rest = rest.removesuffix(":0")
    return rest if rest.startswith(group + "/") else f"{group}/{rest}"


def _decode(names) -> list[str]:
    return [n.decode("utf8") if isinstance(n, bytes) else str(n) for n in names]


def _open_h5(file: Path) -> h5py.File:
    try:
        return h5py.File(file, "r")
    except OSError as exc:
        reason = str(exc).split("(")[0].strip().rstrip(",") or "unreadable"
        raise InputError(
            f"not a readable HDF5 file ({reason})",
            file,
            "the file is truncated or corrupt; re-download or re-save it",
        ) from None


Stored = tuple[Path, str, str, tuple[int, ...], str]  # file, dataset path, name, shape, dtype


def _stored(file: Path, dataset: h5py.Dataset, name: str) -> Stored:
    return (file, dataset.name, name, tuple(int(d) for d in dataset.shape), dataset.dtype.str)


def _list_single_file(file: Path) -> list[Stored]:
    stored: list[Stored] = []
    with _open_h5(file) as h5:
        if "layer_names" not in h5.attrs:
            raise InputError(
                "HDF5 file has no Keras 'layer_names' attribute, so it was not written by "
                "transformers' TF save_pretrained",
                file,
                "pass a tf_model.h5 saved by a TF* class of transformers",
            )
        for group in _decode(h5.attrs["layer_names"]):
            weight_names = _decode(h5[group].attrs.get("weight_names", []))
            for weight_name in weight_names:
                dataset = h5[group].get(weight_name)
                if not isinstance(dataset, h5py.Dataset):
                    raise InputError(f"weight '{weight_name}' is listed but not stored", file)
                stored.append(_stored(file, dataset, _canonical(group, weight_name)))
    return stored


def _list_shards(index_file: Path) -> list[Stored]:
    weight_map, shards = shard_index(index_file)
    stored: list[Stored] = []
    for shard in shards:
        with _open_h5(shard) as h5:
            for name in _decode(h5.attrs.get("layer_names", [])):
                stored.append(_stored(shard, h5[name], name.removesuffix(":0")))
    if len(stored) != len(weight_map):
        raise InputError(
            f"shards hold {len(stored)} weights but the index lists {len(weight_map)}", index_file
        )
    return stored


def _list_stored(weights: Path, sharded: bool) -> list[Stored]:
    """Every stored weight's metadata; run in a child process (see `isolated`)."""
    try:
        return _list_shards(weights) if sharded else _list_single_file(weights)
    except MALFORMED as exc:
        raise InputError(
            f"malformed Keras weight file ({exc})",
            weights,
            "the file is truncated or corrupt; re-save it",
        ) from None


def read(path: Path) -> Source:
    directory = _weights_dir(path)
    assert directory is not None, "read() called on a path probe() rejected"
    config_path = directory / "config.json"
    if not config_path.exists():
        raise InputError(
            "no config.json next to the TF weights",
            directory,
            "save_pretrained writes one; copy the model's config.json there",
        )
    config = read_json_object(config_path)
    sharded = not (directory / SINGLE_FILE).exists() or path.name == SHARD_INDEX
    weights = directory / (SHARD_INDEX if sharded else SINGLE_FILE)
    stored = isolated(_list_stored, weights, sharded, path=weights)
    files = _OpenFiles()
    tensors = [
        SourceTensor(
            name=name,
            shape=shape,
            dtype=np.dtype(dtype),
            read=partial(files.read, file, dataset),
            origin=f"{file.name}:{dataset}",
        )
        for file, dataset, name, shape, dtype in stored
    ]
    weight_files = sorted({file for file, *_ in stored}) or [weights]
    return Source(
        path=path,
        layout=LAYOUT,
        config=config,
        config_path=config_path,
        tensors=tensors,
        weight_files=weight_files,
        tokenizer_files=sibling_files(directory, TOKENIZER_FILE_NAMES),
        extra_files=sibling_files(directory, EXTRA_FILE_NAMES),
        close=files.close,
    )
