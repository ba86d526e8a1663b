"""The model a checkpoint should load into: its transformers class and config, and the parameters
it expects, listed from an instance on the `meta` device (no memory, no random draws)."""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, UsageError
from ..readers.base import read_json_object
from ..tables.config_keys import (
    config_guesses,
    dims_from_targets,
    family_defaults,
    family_tables,
    target_rules,
    written_keys,
)
from .checkpoint import Checkpoint


@dataclass
class ConfigOrigin:
    """Where the config values no weight shape shows came from, when no config was given."""

    inferred: bool = False  # built from the weights' shapes (no config file)
    family: dict[str, Any] = field(default_factory=dict)  # the table's family_defaults
    assumed: dict[str, str] = field(default_factory=dict)  # key → how it was guessed


@dataclass
class Target:
    class_name: str
    config: dict[str, Any]  # the config the model is built from (written by --fix)
    params: dict[str, tuple[int, ...]]  # every key of the model's state_dict, with its shape
    tied: dict[str, str]  # key → the key it shares storage with (written once)
    base_prefix: str  # the base model's attribute name (roberta, bert, …)
    notes: list[str]
    origin: ConfigOrigin = field(default_factory=ConfigOrigin)
    minimal_config: dict[str, Any] = field(default_factory=dict)  # what --fix writes

    @property
    def assumed(self) -> dict[str, str]:
        """ "key=value (how it was guessed)" for every guessed value, for the verdict."""
        return {k: f"{k}={self.config.get(k)} ({why})" for k, why in self.origin.assumed.items()}

    @property
    def has_head(self) -> bool:
        """False for the bare base model, whose keys carry no base prefix."""
        return any(k.startswith(self.base_prefix + ".") for k in self.params)

    def is_head(self, key: str) -> bool:
        """A parameter of the task head, outside the base model."""
        return self.has_head and not key.startswith(self.base_prefix + ".")


def transformers_without_tf():
    """transformers, imported (if this process has not yet) without loading TensorFlow: the
    doctor reads PyTorch checkpoints only, and TF's import costs seconds and a page of logs."""
    if "transformers" in sys.modules:
        return sys.modules["transformers"]
    before = os.environ.get("USE_TF")
    os.environ["USE_TF"] = "0"
    try:
        return importlib.import_module("transformers")
    finally:
        if before is None:
            del os.environ["USE_TF"]
        else:
            os.environ["USE_TF"] = before


def _class_for(arch: str, head: str) -> str:
    matching = family_tables(arch)
    table = next((t for t in matching if head in t.heads), None)
    if table is None:
        heads = sorted({h for t in matching for h in t.heads})
        raise UsageError(f"unknown head '{head}' for {arch}", hint=f"choose one of: {heads}")
    return table.class_name(head)


def _fill_unseen(config: dict[str, Any], arch: str, origin: ConfigOrigin) -> None:
    """Values no weight shows: from the family defaults, else guessed as the architecture's
    tables say (and recorded as such, so the verdict never reads clean)."""
    for key, value in family_defaults(arch).items():
        if key not in config:
            config[key] = value
            origin.family[key] = value
    for key, guess in config_guesses(arch).items():
        if key in config:
            continue
        value, why = guess.value(config)
        if value is not None:
            config[key] = value
        origin.assumed[key] = why


def _config_from(model: Path) -> dict[str, Any]:
    path = model / "config.json" if model.is_dir() else model
    if not path.is_file():
        raise InputError("no config.json there", model, "pass a model directory or config.json")
    return read_json_object(path)


def base_config(
    checkpoint: Checkpoint,
    model: Path | None,
    arch: str | None,
    overrides: dict[str, Any],
) -> tuple[dict[str, Any], ConfigOrigin]:
    """The config from --model, the checkpoint's own config, or its shapes, with --set applied.

    Built from shapes, the values no weight shows come from --set, the family defaults, or a
    guess, and `ConfigOrigin` records which, so a guess never reads as a clean verdict.
    """
    origin = ConfigOrigin()
    if model is not None:
        return _config_from(model) | overrides, origin
    if checkpoint.config is not None:
        return dict(checkpoint.config) | overrides, origin
    if arch is not None:
        if not config_guesses(arch):  # its unseen values would be class defaults, unannounced
            raise UsageError(
                f"the {arch} tables declare no config_guesses, so what no weight shows "
                "(the head count) cannot be told from a guess",
                checkpoint.path,
                "pass --model DIR_OR_CONFIG, or add config_guesses to the architecture's table",
            )
        model_type = family_tables(arch)[0].model_type  # phobert → roberta
        shapes = {n: tuple(t.shape) for n, t in checkpoint.tensors.items()}
        config = (
            {"model_type": model_type} | dims_from_targets(shapes, target_rules(arch)) | overrides
        )
        origin.inferred = True
        _fill_unseen(config, arch, origin)
        return config, origin
    raise UsageError(
        "the checkpoint has no config.json beside it",
        checkpoint.path,
        "pass --model DIR_OR_CONFIG, or --arch (and --head)",
    )


def candidate_classes(config: dict[str, Any], arch: str | None, head: str | None) -> list[str]:
    """The class named by --head, else the config's architectures, else every head's class."""
    arch = arch or str(config.get("model_type"))
    if head is not None:
        return [_class_for(arch, head)]
    if config.get("architectures"):
        return [str(config["architectures"][0])]
    matching = family_tables(arch)
    return list(dict.fromkeys(t.class_name(h) for t in matching for h in t.heads))


def build_target(
    config: dict[str, Any],
    class_name: str,
    num_labels: int | None,
    origin: ConfigOrigin,
) -> Target:
    import torch

    transformers = transformers_without_tf()
    config = dict(config)
    if num_labels is not None:
        config = {k: v for k, v in config.items() if k not in ("id2label", "label2id")}
        config["num_labels"] = num_labels
    config["architectures"] = [class_name]
    quiet = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # class warnings would read as findings
    try:
        config_obj = transformers.AutoConfig.for_model(**config)
        cls = getattr(transformers, class_name)
        with torch.device("meta"):
            instance = cls(config_obj)
    except (ValueError, KeyError, AttributeError, TypeError) as exc:
        raise InputError(
            f"cannot build {class_name} from the config ({exc})",
            hint="pass --head (and --arch) to choose a transformers class",
        ) from None
    finally:
        transformers.logging.set_verbosity(quiet)
    params = {k: tuple(v.shape) for k, v in instance.state_dict().items()}
    first_owner: dict[int, str] = {}
    tied = {}
    for name, param in instance.named_parameters(remove_duplicate=False):
        owner = first_owner.setdefault(id(param), name)
        if owner != name:
            tied[name] = owner
    notes = ["no config given: dimensions read from the weights"] if origin.inferred else []
    full = config_obj.to_dict()
    full.pop("transformers_version", None)
    target = Target(class_name, full, params, tied, instance.base_model_prefix, notes, origin)
    target.minimal_config = minimal_config(config_obj, _written(str(config.get("model_type"))))
    return target


def _written(model_type: str) -> tuple[str, ...]:
    """The keys --fix always writes; a model type no table serves has only its class named."""
    try:
        return written_keys(model_type)
    except UsageError:
        return ("architectures", "model_type")


def minimal_config(config_obj, written: tuple[str, ...]) -> dict[str, Any]:
    """What --fix writes: the keys that differ from the class defaults, plus `written` (the
    dimensions and numerics, so a later transformers with other defaults builds the same model)
    — not to_dict()'s generation defaults and empty `_name_or_path`."""
    full = config_obj.to_dict()
    defaults = type(config_obj)().to_dict()
    keep = {k for k, v in full.items() if k not in defaults or defaults[k] != v} | set(written)
    keep -= {"transformers_version", "_name_or_path"}
    return {k: full[k] for k in full if k in keep}
