"""Reader for TF2 object-based checkpoints and SavedModels.

Accepts a `tf.train.Checkpoint` / Keras `save_weights` prefix (`ckpt-N`, its `.index`, or the
directory holding it) and a SavedModel directory (`saved_model.pb` + `variables/`; also the
`saved_model/1` directory transformers writes). Both store variables in the same tensor bundle,
never named by the bare bundle key (`variables/7/.ATTRIBUTES/VARIABLE_VALUE`): a checkpoint's
tensors by their object path, recovered from the bundle's object graph (object_graph.py); a
SavedModel's by the variable names recorded in that graph (see `_saved_model_names`).
The bundle is read without TensorFlow (bundle.py): one tensor, or one block of its rows, per
call, by offset from its data shard. A `config.json` / `bert_config.json` next to the
source is its config when present.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

from ..errors import InputError
from . import object_graph
from .base import (
    TOKENIZER_FILE_NAMES,
    Source,
    SourceTensor,
    read_json_object,
    sibling_files,
)
from .bundle import Bundle
from .checkpoint_files import INDEX_SUFFIX, checkpoint_step, data_shards

LAYOUT = "tf2"
SAVED_MODEL_FILE = "saved_model.pb"
SAVED_MODEL_VARIABLES = Path("variables") / "variables"
TRANSFORMERS_SAVED_MODEL = Path("saved_model") / "1"  # save_pretrained(dir, saved_model=True)
CONFIG_NAMES = ("config.json", "bert_config.json")
# The object graph's key, as the uncompressed .index file stores it; enough to tell TF2 from TF1.
GRAPH_MARK = object_graph.OBJECT_GRAPH_KEY.encode()


def _saved_model_dir(path: Path) -> Path | None:
    if path.is_dir() and (path / SAVED_MODEL_FILE).is_file():
        return path
    if path.is_file() and path.name == SAVED_MODEL_FILE:
        return path.parent
    return None


def _holds_object_graph(index_file: Path) -> bool:
    try:
        with index_file.open("rb") as f:
            return GRAPH_MARK in f.read(64 * 2**20)
    except OSError:
        return False


def _checkpoint_prefix(path: Path) -> Path | None:
    """The prefix of a TF2 checkpoint `path` names (the `.index` must hold an object graph)."""
    if path.name.endswith(INDEX_SUFFIX) and path.is_file():
        candidates = [path.with_name(path.name.removesuffix(INDEX_SUFFIX))]
    elif path.is_dir():
        candidates = [p.with_name(p.name.removesuffix(INDEX_SUFFIX)) for p in path.glob("*.index")]
        candidates.sort(key=lambda p: (checkpoint_step(p), p.name), reverse=True)
    else:
        candidates = [path]
    return next(
        (p for p in candidates if _holds_object_graph(p.with_name(p.name + INDEX_SUFFIX))), None
    )


def probe(path: Path) -> bool:
    return (
        _saved_model_dir(path) is not None
        or (path / TRANSFORMERS_SAVED_MODEL / SAVED_MODEL_FILE).is_file()
        or _checkpoint_prefix(path) is not None
    )


def _bundle_prefix(path: Path) -> tuple[Path, str]:
    """(the bundle prefix, the form: "savedmodel" or "checkpoint")."""
    if (path / TRANSFORMERS_SAVED_MODEL / SAVED_MODEL_FILE).is_file():
        path = path / TRANSFORMERS_SAVED_MODEL
    saved = _saved_model_dir(path)
    if saved is not None:
        prefix = saved / SAVED_MODEL_VARIABLES
        if not prefix.with_name(prefix.name + INDEX_SUFFIX).is_file():
            raise InputError(
                "SavedModel has no variables (variables/variables.index is missing)",
                saved,
                "a SavedModel without variables holds no weights to convert; "
                "export it again with its variables",
            )
        return prefix, "savedmodel"
    prefix = _checkpoint_prefix(path)
    assert prefix is not None, "read() called on a path probe() rejected"
    return prefix, "checkpoint"


def _graph_tensors(bundle: Bundle, keys: set[str]) -> list[object_graph.GraphTensor]:
    where = bundle.index_file
    if object_graph.OBJECT_GRAPH_KEY not in keys:
        raise InputError(
            "has no object graph (_CHECKPOINTABLE_OBJECT_GRAPH), so it is not a TF2 checkpoint",
            where,
            "a TF1 checkpoint needs its bert_config.json next to it",
        )
    try:
        graph = object_graph.parse(bundle.scalar_bytes(object_graph.OBJECT_GRAPH_KEY))
        named = object_graph.tensors(graph)
    except object_graph.DamagedObjectGraph as exc:
        raise InputError(
            f"the checkpoint's object graph is damaged ({exc})",
            where,
            "re-save the checkpoint; its variables cannot be named without it",
        ) from None
    unknown = sorted(keys - {t.checkpoint_key for t in named} - {object_graph.OBJECT_GRAPH_KEY})
    if unknown:
        raise InputError(
            f"the object graph does not name {len(unknown)} stored tensor(s), e.g. '{unknown[0]}'",
            where,
            "the checkpoint's object graph is damaged; re-save the checkpoint",
        )
    return [t for t in named if t.checkpoint_key in keys]


GENERIC_NAME = re.compile(r"Variable(_[0-9]+)?")


def _saved_model_names(named: list[object_graph.GraphTensor]) -> dict[str, str]:
    """Checkpoint key → the variable's own name, for a SavedModel.

    A Keras SavedModel keeps only its layers' numbering in the object graph
    (`layer_with_weights-0/layer_with_weights-4/_attention_layer/…`), while the variable names its
    author gave (`transformer/layer_0/self_attention/query/kernel`, TF Hub BERT) are what its docs
    and every release of that model share. They are used when they are unique; a nameless
    `tf.Variable` (`Variable_3`) keeps its object path (`do_lower_case`).
    """
    names = {
        t.checkpoint_key: t.path
        if not t.full_name or GENERIC_NAME.fullmatch(t.full_name)
        else t.full_name
        for t in named
    }
    if len(set(names.values())) != len(names):
        return {}
    return _without_model_scope(names)


def _without_model_scope(names: dict[str, str]) -> dict[str, str]:
    """Drop the Keras model's own name scope when every variable name starts with it
    (`tf_bert_for_sequence_classification/bert/…` → `bert/…`, as the tf_model.h5 reader names
    the same weights), so a transformers SavedModel reads like its h5 save."""
    scopes = {n.split("/", 1)[0] for n in names.values() if "/" in n}
    scoped = all("/" in n for n in names.values())
    if len(scopes) != 1 or not scoped:
        return names
    stripped = {k: n.split("/", 1)[1] for k, n in names.items()}
    return stripped if len(set(stripped.values())) == len(stripped) else names


def _config(directories: list[Path]) -> tuple[dict, Path | None]:
    for directory in directories:
        for name in CONFIG_NAMES:
            if (directory / name).is_file():
                return read_json_object(directory / name), directory / name
    return {}, None


def read(path: Path) -> Source:
    prefix, form = _bundle_prefix(path)
    shards = data_shards(prefix)
    bundle = Bundle(prefix, shards)
    entries = bundle.entries
    named = _graph_tensors(bundle, set(entries))
    names = _saved_model_names(named) if form == "savedmodel" else {}
    tensors = [
        SourceTensor(
            name=names.get(t.checkpoint_key, t.path),
            shape=entries[t.checkpoint_key].shape,
            dtype=entries[t.checkpoint_key].dtype,
            read=partial(bundle.read, t.checkpoint_key),
            origin=f"{prefix.name}:{t.checkpoint_key}"
            + (f" ({t.full_name})" if t.full_name else ""),
        )
        for t in sorted(named, key=lambda t: names.get(t.checkpoint_key, t.path))
    ]
    home = prefix.parent.parent if form == "savedmodel" else prefix.parent
    # transformers' save_pretrained(saved_model=True) keeps config and tokenizer two levels up
    near = [home, home.parent.parent] if home.name == "1" else [home]
    config, config_path = _config(near)
    tokenizer_dir = next(
        (d for d in [*near, home / "assets"] if sibling_files(d, TOKENIZER_FILE_NAMES)), home
    )
    return Source(
        path=path,
        layout=LAYOUT,
        config=config,
        config_path=config_path,
        tensors=tensors,
        weight_files=[bundle.index_file, *shards],
        tokenizer_files=sibling_files(tokenizer_dir, TOKENIZER_FILE_NAMES),
        form=form,
    )
