"""Reader for Keras 3 / keras-hub models: `.keras` archives, preset dirs and `.weights.h5` files.

Keras 3 stores each variable at `<attribute path>/vars/<N>`: layers in a list get auto names
(`transformer_encoder`, `transformer_encoder_1`, …), nested layers keep their attribute names
(`_self_attention_layer/query_dense`). A keras-hub task holds its backbone as `layers/<x>_backbone`;
a preset splits the two into `model.weights.h5` (backbone) and `task.weights.h5` (the rest).

Canonical names put every backbone variable under `backbone/` and keep the task's own variables
(and optimizer slots) at their stored paths, so all three forms name the same weight alike:
`backbone/layers/transformer_encoder_1/_self_attention_layer/query_dense/vars/0`,
`layers/dense/vars/0`. Only h5py and zipfile are imported.
"""

from __future__ import annotations

import re
import zipfile
from functools import partial
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import InputError
from .base import (
    MALFORMED,
    TOKENIZER_FILE_NAMES,
    Index,
    Source,
    SourceTensor,
    isolated,
    json_object,
    read_json_object,
    sibling_files,
)
from .zip_member import open_member

LAYOUT = "keras-hub"
KERAS_SUFFIX = ".keras"
WEIGHTS_SUFFIX = ".weights.h5"
ZIP_WEIGHTS = "model.weights.h5"
ZIP_CONFIG = "config.json"
PRESET_CONFIG = "config.json"
PRESET_WEIGHTS = "model.weights.h5"
PRESET_TASK = "task.json"
PRESET_TASK_WEIGHTS = "task.weights.h5"
BACKBONE_SUFFIX = "_backbone"  # keras-hub names every backbone class `<Model>Backbone`
# The backbone layer's name: `<model>_backbone`, or `<model>_backbone_<n>` when the process that
# saved it had built other backbones of that class first (Keras keeps layer names unique).
BACKBONE_NAME = re.compile(rf"(?P<model>.+){BACKBONE_SUFFIX}(?:_\d+)?")
BACKBONE_ROOT = "backbone/"
BFLOAT16 = "bfloat16"


def _is_preset(path: Path) -> bool:
    return path.is_dir() and (path / PRESET_CONFIG).is_file() and (path / PRESET_WEIGHTS).exists()


def probe(path: Path) -> bool:
    if path.is_file():
        return path.name.endswith(WEIGHTS_SUFFIX) or path.suffix == KERAS_SUFFIX
    return _is_preset(path)


def _snake(class_name: str) -> str:
    """As Keras names a layer after its class: a word starts at each capital that begins a
    lower-case run or follows a lower-case letter or digit (`XLMRoberta` → `xlm_roberta`)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", class_name).lower()


def model_type_of(backbone_name: str) -> str:
    """`XLMRobertaBackbone` or `xlm_roberta_backbone` → `xlm_roberta`: the keras-hub model's
    own name, which the tables list among their `model_types`."""
    snake = _snake(backbone_name)
    named = BACKBONE_NAME.fullmatch(snake)
    return named.group("model") if named else snake


# --- weights: listing (in a child process, see `isolated`) and reading ---------------------------

Stored = tuple[str, str, tuple[int, ...], str]  # h5 dataset path, canonical name, shape, dtype


def _open_h5(file: Path, member: str | None):
    """The h5 file, or the h5 member of a `.keras` zip (read in place, zip_member.py), and what
    to close after it."""
    if member is None:
        return h5py.File(file, "r"), None
    view = open_member(file, member)
    return h5py.File(view, "r"), view


def _backbone_group(h5: h5py.File) -> tuple[str | None, str]:
    """Where this file keeps the backbone — "" for a backbone's own file, `layers/<x>_backbone`
    for a task's file, None when it holds none (a preset's task.weights.h5) — and its name."""
    top = h5.get("vars")
    top_name = str(top.attrs.get("name", "")) if isinstance(top, h5py.Group) else ""
    if BACKBONE_NAME.fullmatch(top_name):
        return "", top_name
    layers = h5.get("layers")
    found = (
        [n for n in layers if BACKBONE_NAME.fullmatch(n)] if isinstance(layers, h5py.Group) else []
    )
    return (f"layers/{found[0]}", found[0]) if len(found) == 1 else (None, "")


Listing = tuple[str, list[Stored]]  # the backbone's name ("" if none), the stored variables


def _list_file(file: Path, member: str | None, backbone_only: bool) -> Listing:
    h5, archive = _open_h5(file, member)
    try:
        if not ({"layers", "vars"} & set(h5.keys())):
            raise InputError(
                "HDF5 file has no Keras 3 'layers'/'vars' groups, so it was not written by "
                "Keras 3 save_weights/save",
                file,
                "pass a .weights.h5, .keras or keras-hub preset saved by Keras 3",
            )
        backbone, backbone_name = ("", "") if backbone_only else _backbone_group(h5)
        stored: list[Stored] = []

        def visit(name: str, obj) -> None:
            if not isinstance(obj, h5py.Dataset):
                return
            if backbone is not None and (backbone == "" or name.startswith(backbone + "/")):
                canonical = BACKBONE_ROOT + name.removeprefix(backbone).lstrip("/")
            else:
                canonical = name
            shape = tuple(int(d) for d in obj.shape)
            # Keras 3 stores bfloat16 as opaque 2-byte values marked by a `dtype` attribute.
            dtype = BFLOAT16 if obj.attrs.get("dtype") == BFLOAT16 else obj.dtype.str
            stored.append((name, canonical, shape, dtype))

        h5.visititems(visit)
        return backbone_name, stored
    finally:
        h5.close()
        if archive is not None:
            archive.close()


def _list_safely(file: Path, member: str | None, backbone_only: bool) -> Listing:
    try:
        return _list_file(file, member, backbone_only)
    except InputError:
        raise
    except MALFORMED as exc:
        raise InputError(
            f"malformed Keras weight file ({exc})",
            file,
            "the file is truncated or corrupt; re-save it",
        ) from None


class _OpenFiles:
    """Weight files (and the `.keras` zip) opened once per source, kept open while reading."""

    def __init__(self) -> None:
        self._open: dict[tuple[Path, str | None], tuple[h5py.File, Any]] = {}

    def read(
        self, file: Path, member: str | None, dataset: str, dtype: np.dtype, index: Index
    ) -> np.ndarray:
        key = (file, member)
        if key not in self._open:
            self._open[key] = _open_h5(file, member)
        data = self._open[key][0][dataset]
        array = np.asarray(data[()] if index is None else data[index])
        return array.view(dtype) if dtype.name == BFLOAT16 else array

    def close(self) -> None:
        for h5, archive in self._open.values():
            h5.close()
            if archive is not None:
                archive.close()
        self._open.clear()


# --- configs --------------------------------------------------------------------------------------


def _normalise(serialized: dict[str, Any], where: Path) -> dict[str, Any]:
    """A Keras-serialized task or backbone → {backbone_class, backbone, task_class, task,
    model_type}: the keys the mapping table's `source_config` refers to."""
    class_name = str(serialized.get("class_name", ""))
    config = serialized.get("config")
    if not isinstance(config, dict):
        raise InputError(f"Keras config of {class_name or 'the model'} has no 'config'", where)
    if class_name.endswith("Backbone"):
        backbone, task, task_class = serialized, {}, ""
    elif isinstance(config.get("backbone"), dict):
        backbone, task, task_class = config["backbone"], config, class_name
    else:
        raise InputError(
            f"the model is a {class_name or 'model of unknown class'}, not a keras-hub task or "
            "backbone",
            where,
            "tf2pt converts keras-hub models (e.g. RobertaBackbone, RobertaTextClassifier)",
        )
    backbone_class = str(backbone.get("class_name", ""))
    return {
        "architectures": [task_class or backbone_class],
        "backbone_class": backbone_class,
        "backbone": backbone.get("config") or {},
        "task_class": task_class,
        "task": {k: v for k, v in task.items() if k != "backbone"},
        "model_type": model_type_of(backbone_class),
    }


# --- the three forms ------------------------------------------------------------------------------


def _keras_archive(path: Path) -> tuple[dict[str, Any], list[tuple[Path, str | None, bool]]]:
    if not zipfile.is_zipfile(path):
        raise InputError(
            "is not a zip archive, so not a Keras 3 .keras file",
            path,
            "the file is truncated or corrupt, or is an older Keras format; re-save it with "
            "model.save('model.keras')",
        )
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = {ZIP_CONFIG, ZIP_WEIGHTS} - names
            if missing:
                raise InputError(f".keras archive lacks {', '.join(sorted(missing))}", path)
            config = json_object(archive.read(ZIP_CONFIG).decode("utf8"), path)
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"unreadable .keras archive ({exc})", path) from None
    return _normalise(config, path), [(path, ZIP_WEIGHTS, False)]


def _preset(path: Path) -> tuple[dict[str, Any], list[tuple[Path, str | None, bool]]]:
    backbone = read_json_object(path / PRESET_CONFIG)
    files: list[tuple[Path, str | None, bool]] = [(path / PRESET_WEIGHTS, None, True)]
    if (path / PRESET_TASK).is_file():
        task = read_json_object(path / PRESET_TASK)
        config = _normalise(task, path / PRESET_TASK)
        if (path / PRESET_TASK_WEIGHTS).exists():
            files.append((path / PRESET_TASK_WEIGHTS, None, False))
    else:
        config = _normalise(backbone, path / PRESET_CONFIG)
    return config, files


def _bare_weights(path: Path) -> tuple[dict[str, Any], list[tuple[Path, str | None, bool]]]:
    return {}, [(path, None, False)]


FORMS = {"preset": _preset, KERAS_SUFFIX: _keras_archive, WEIGHTS_SUFFIX: _bare_weights}


def _form(path: Path) -> str:
    if path.is_dir():
        return "preset"
    return KERAS_SUFFIX if path.suffix == KERAS_SUFFIX else WEIGHTS_SUFFIX


def _keras(file: Path) -> bool:
    """A keras-hub preset's tokenizer.json is a serialized Keras layer, not an HF tokenizer."""
    if file.name != "tokenizer.json":
        return False
    try:
        return "class_name" in read_json_object(file)
    except InputError:
        return False


def _numpy_dtype(name: str, file: Path) -> np.dtype:
    """numpy's dtype for a stored one; bfloat16 is ml_dtypes' (what TF and Keras use)."""
    if name != BFLOAT16:
        return np.dtype(name)
    try:
        import ml_dtypes
    except ImportError:
        raise InputError(
            "holds bfloat16 tensors", file, "pip install ml_dtypes to read them"
        ) from None
    return np.dtype(ml_dtypes.bfloat16)


def read(path: Path) -> Source:
    form = _form(path)
    config, files = FORMS[form](path)
    files_open = _OpenFiles()
    tensors: list[SourceTensor] = []
    for file, member, backbone_only in files:
        if not file.exists():
            raise InputError("weight file is missing", file, "restore it from the preset")
        backbone_name, stored = isolated(_list_safely, file, member, backbone_only, path=file)
        if form == WEIGHTS_SUFFIX and not backbone_name:
            raise InputError(
                "holds no keras-hub backbone (no '*_backbone' layer): a preset's "
                "task.weights.h5 holds only the task's head",
                file,
                "convert the preset directory (config.json, model.weights.h5, task.json, "
                "task.weights.h5) or the .keras file",
            )
        if form == WEIGHTS_SUFFIX:
            # A bare .weights.h5 has no config: only its backbone's name says which model it is.
            config = {"model_type": model_type_of(backbone_name)}
        where = f"{file.name}!{member}" if member else file.name
        tensors += [
            SourceTensor(
                name=name,
                shape=shape,
                dtype=_numpy_dtype(dtype, file),
                read=partial(files_open.read, file, member, dataset, _numpy_dtype(dtype, file)),
                origin=f"{where}:{dataset}",
            )
            for dataset, name, shape, dtype in stored
        ]
    directory = path if path.is_dir() else path.parent
    return Source(
        path=path,
        layout=LAYOUT,
        config=config,
        config_path=None if form == WEIGHTS_SUFFIX else path,
        tensors=tensors,
        weight_files=[file for file, _, _ in files],
        tokenizer_files=[
            f for f in sibling_files(directory, TOKENIZER_FILE_NAMES) if not _keras(f)
        ],
        close=files_open.close,
        form=form,
    )
