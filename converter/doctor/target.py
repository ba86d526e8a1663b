"""The model a checkpoint should load into: its transformers class and config, and the parameters
it expects, listed from an instance on the `meta` device (no memory, no random draws)."""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, UsageError
from ..mapping import Table, load_table, table_names
from ..readers.base import read_json_object
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


def _tables_for(arch: str) -> list[Table]:
    tables = [load_table(n) for n in table_names()]
    matching = [t for t in tables if t.serves(arch)]
    if not matching:
        known = sorted({t.architecture for t in tables})
        raise UsageError(f"unknown architecture '{arch}'", hint=f"choose one of: {known}")
    return matching


def _class_for(arch: str, head: str) -> str:
    matching = _tables_for(arch)
    table = next((t for t in matching if head in t.heads), None)
    if table is None:
        heads = sorted({h for t in matching for h in t.heads})
        raise UsageError(f"unknown head '{head}' for {arch}", hint=f"choose one of: {heads}")
    return table.class_name(head)


def _inferred_config(checkpoint: Checkpoint, rules: dict[str, Any], model_type: str) -> dict:
    """Dimensions read from the checkpoint's shapes when there is no config to go by."""
    config: dict[str, Any] = {"model_type": model_type}
    for key, rule in rules.items():
        suffixes = rule["suffix"] if isinstance(rule["suffix"], list) else [rule["suffix"]]
        hit = next(
            (t for n, t in sorted(checkpoint.tensors.items()) if n.endswith(tuple(suffixes))),
            None,
        )
        if hit is not None and len(hit.shape) > rule["axis"]:
            config[key] = hit.shape[rule["axis"]]
    layers = {int(m.group(1)) for n in checkpoint.tensors if (m := re.search(r"layer\.(\d+)\.", n))}
    if layers:
        config["num_hidden_layers"] = max(layers) + 1
    return config


def family_defaults(arch: str) -> dict[str, Any]:
    """The first family_defaults a table of this architecture declares (variants inherit)."""
    return next((dict(t.family_defaults) for t in _tables_for(arch) if t.family_defaults), {})


def _fill_unseen(
    config: dict[str, Any], arch: str, unseen: dict[str, Any], origin: ConfigOrigin
) -> None:
    """Values no weight shows: from the family defaults, else guessed (and recorded as such)."""
    for key, value in family_defaults(arch).items():
        if key not in config:
            config[key] = value
            origin.family[key] = value
    for key, rule in unseen.items():
        if key in config:
            continue
        head_dim = (rule or {}).get("head_dim")
        if head_dim and "hidden_size" in config:
            config[key] = max(1, config["hidden_size"] // head_dim)
            origin.assumed[key] = f"guessed as hidden_size / {head_dim}"
        else:
            origin.assumed[key] = "the transformers config class default"


def _config_from(model: Path) -> dict[str, Any]:
    path = model / "config.json" if model.is_dir() else model
    if not path.is_file():
        raise InputError("no config.json there", model, "pass a model directory or config.json")
    return read_json_object(path)


def base_config(
    checkpoint: Checkpoint,
    model: Path | None,
    arch: str | None,
    infer_rules: dict[str, Any],
    unseen: dict[str, Any],
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
        model_type = _tables_for(arch)[0].model_type  # phobert → roberta
        config = _inferred_config(checkpoint, infer_rules, model_type) | overrides
        origin.inferred = True
        _fill_unseen(config, arch, unseen, origin)
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
    matching = _tables_for(arch)
    return list(dict.fromkeys(t.class_name(h) for t in matching for h in t.heads))


def build_target(
    config: dict[str, Any],
    class_name: str,
    num_labels: int | None,
    origin: ConfigOrigin,
    written: tuple[str, ...] = (),
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
    target.minimal_config = minimal_config(config_obj, written)
    return target


def minimal_config(config_obj, written: tuple[str, ...]) -> dict[str, Any]:
    """What --fix writes: the keys that differ from the class defaults, plus `written` (the
    dimensions and numerics, so a later transformers with other defaults builds the same model)
    — not to_dict()'s generation defaults and empty `_name_or_path`."""
    full = config_obj.to_dict()
    defaults = type(config_obj)().to_dict()
    keep = {k for k, v in full.items() if k not in defaults or defaults[k] != v} | set(written)
    keep -= {"transformers_version", "_name_or_path"}
    return {k: full[k] for k in full if k in keep}
