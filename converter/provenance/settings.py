"""Config values the user declares: `--set KEY=VALUE` (convert and doctor) and `--config FILE`.

`--set` values are in transformers' terms, the terms of the written config.json: they decide what
the converted model is, never what the source is, so the TF reference never sees them and parity
tests them. `--config FILE` is the source's config given in place of (or where there is no) file
beside the weights, in the producer's terms: the table translates it and the TF reference is
built from it, as from a config found there.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..readers.base import Source, read_json_object

DECIDED_ELSEWHERE = {  # keys a --set may not change, and the option that decides each
    "model_type": "--arch",
    "architectures": "--head",
    "num_labels": "--num-labels (the classifier's shape decides it)",
}


def parse_settings(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`--set key=value` pairs; values read as JSON (12, 1e-5, true), else as text (gelu)."""
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip().isidentifier():
            raise UsageError(
                f"cannot read --set '{pair}'", hint="write e.g. --set num_attention_heads=12"
            )
        try:
            settings[key.strip()] = json.loads(text)
        except ValueError:
            settings[key.strip()] = text
    return settings


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    return "text" if isinstance(value, str) else type(value).__name__


def check_settings(settings: dict[str, Any], known: dict[str, Any]) -> None:
    """Refuse a --set the conversion would write but nothing would read: a key decided by
    another option, a near miss of a known key (a typo), or a value of another kind than the
    known one (`layer_norm_eps=abc`). `known` is the config the source and tables give."""
    for key, value in settings.items():
        if key in DECIDED_ELSEWHERE:
            raise UsageError(
                f"--set {key}: decided by the mapping table and head",
                hint=f"use {DECIDED_ELSEWHERE[key]}",
            )
        if key not in known:
            near = difflib.get_close_matches(key, list(known), n=1, cutoff=0.8)
            if near:
                raise UsageError(
                    f"--set {key}: not a key of this model's config",
                    hint=f"did you mean {near[0]}?",
                )
            continue
        before = known[key]
        if before is not None and value is not None and _kind(before) != _kind(value):
            raise UsageError(
                f"--set {key}={json.dumps(value)}: expected {_kind(before)}, like the "
                f"{json.dumps(before)} the source and tables give"
            )


def use_config_file(source: Source, path: Path) -> None:
    """Make the JSON object in `path` the source's config (the one found beside the weights is
    kept as `own_config`). Refused for a source whose config lives inside its model files
    (.keras, a keras-hub preset): its TF reference is rebuilt from those, so a separate file
    would describe another model than the one parity runs."""
    config = read_json_object(path)
    if source.config_path is not None and source.config_path.suffix != ".json":
        raise UsageError(
            f"--config: {source.path} keeps its config inside its model files, and its TF "
            "reference is rebuilt from them",
            hint="change values with --set KEY=VALUE instead",
        )
    source.own_config = source.config
    source.config = config
    source.config_path = path
