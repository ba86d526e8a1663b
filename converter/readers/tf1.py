"""Reader for TF1 checkpoints in the google-research/bert layout (`model.ckpt-N.index` + `.data-*`).

Also BioBERT, SciBERT and the Chinese "RoBERTa" checkpoints (roberta_zh, chinese-roberta-wwm-ext),
which are BERT-layout. Variable names are used as stored (`bert/encoder/layer_3/…/kernel`,
`…/adam_m`). TensorFlow's checkpoint reader is the only way to read the tensor bundle, so TF is
imported here, lazily, and only for this layout. `bert_config.json` is the source config.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from ..errors import InputError
from .base import (
    MALFORMED,
    TOKENIZER_FILE_NAMES,
    Index,
    Source,
    SourceTensor,
    read_json_object,
    sibling_files,
)
from .checkpoint_files import DATA_SHARD, INDEX_SUFFIX, checkpoint_step, data_shards

LAYOUT = "tf1-checkpoint"


def _prefix(path: Path) -> Path | None:
    """The checkpoint prefix (`…/model.ckpt-1000`) that `path` names, if any."""
    if path.name.endswith(INDEX_SUFFIX) and path.is_file():
        return path.with_name(path.name.removesuffix(INDEX_SUFFIX))
    if path.with_name(path.name + INDEX_SUFFIX).is_file():
        return path
    if path.is_dir():
        prefixes = [p.with_name(p.name.removesuffix(INDEX_SUFFIX)) for p in path.glob("*.index")]
        prefixes = [p for p in prefixes if "ckpt" in p.name]
        return max(prefixes, key=lambda p: (checkpoint_step(p), p.name)) if prefixes else None
    if DATA_SHARD.search(path.name) and path.is_file():
        return path.with_name(DATA_SHARD.sub("", path.name))
    return None


def probe(path: Path) -> bool:
    return _prefix(path) is not None


def _config_names() -> list[str]:
    from ..tables import load_table, table_names

    tables = [load_table(n) for n in table_names()]
    required = [t.requires_config for t in tables if t.layout == LAYOUT and t.requires_config]
    return [*sorted(set(required), key=required.index), "config.json"]


def _config(directory: Path) -> tuple[dict, Path | None]:
    """The config beside the checkpoint; none (google-research/electra ships none) is for the
    table to accept (sizes from the tensors) or refuse (`requires_config:`). The names looked for
    are the ones the TF1 tables require (bert_config.json, albert_config.json), then config.json."""
    for name in _config_names():
        path = directory / name
        if path.is_file():
            return read_json_object(path), path
    return {}, None


class _Bundle:
    """The checkpoint opened with TF's reader, once, on first use."""

    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix
        self._reader = None

    def reader(self):
        if self._reader is None:
            from ..tf_import import tensorflow

            tf = tensorflow(self.prefix.with_name(self.prefix.name + INDEX_SUFFIX))
            try:
                self._reader = tf.train.load_checkpoint(str(self.prefix))
            except (tf.errors.OpError, IndexError, *MALFORMED) as exc:
                raise InputError(
                    f"TensorFlow cannot open the checkpoint ({_first_line(exc)})",
                    self.prefix.with_name(self.prefix.name + INDEX_SUFFIX),
                    "the .index or .data files are truncated or corrupt",
                ) from None
        return self._reader

    def read(self, name: str, index: Index) -> np.ndarray:
        from ..tf_import import tensorflow

        tf = tensorflow()
        try:
            array = np.asarray(self.reader().get_tensor(name))
        except (tf.errors.OpError, IndexError, *MALFORMED) as exc:  # bundle errors, translated
            raise InputError(
                f"cannot read variable '{name}' ({_first_line(exc)})",
                self.prefix,
                "the checkpoint's data file is truncated or corrupt",
            ) from None
        return array if index is None else np.ascontiguousarray(array[index])


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


def read(path: Path) -> Source:
    prefix = _prefix(path)
    assert prefix is not None, "read() called on a path probe() rejected"
    shards = data_shards(prefix)
    config, config_path = _config(prefix.parent)
    bundle = _Bundle(prefix)
    reader = bundle.reader()
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    tensors = [
        SourceTensor(
            name=name,
            shape=tuple(int(d) for d in shapes[name]),
            dtype=np.dtype(dtypes[name].as_numpy_dtype),
            read=partial(bundle.read, name),
            origin=f"{prefix.name}:{name}",
        )
        for name in sorted(shapes)
    ]
    return Source(
        path=path,
        layout=LAYOUT,
        config=config,
        config_path=config_path,
        tensors=tensors,
        weight_files=[prefix.with_name(prefix.name + INDEX_SUFFIX), *shards],
        tokenizer_files=sibling_files(prefix.parent, TOKENIZER_FILE_NAMES),
        form=prefix.name,
    )
