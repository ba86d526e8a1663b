"""The model a checkpoint should load into: its transformers class and config, and the parameters
it expects, listed from an instance on the `meta` device (no memory, no random draws)."""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, UsageError
from ..mapping import Table, load_table, table_names
from ..readers.base import read_json_object
from .checkpoint import Checkpoint


@dataclass
class Target:
    class_name: str
    config: dict[str, Any]  # the config the model is built from (written by --fix)
    params: dict[str, tuple[int, ...]]  # every key of the model's state_dict, with its shape
    tied: dict[str, str]  # key → the key it shares storage with (written once)
    base_prefix: str  # the base model's attribute name (roberta, bert, …)
    notes: list[str]

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
    if "hidden_size" in config:
        config["num_attention_heads"] = max(1, config["hidden_size"] // 64)
    return config


def _inferred_note(config) -> str:
    return (
        "no config given: dimensions read from the weights; assumed "
        f"num_attention_heads={config.num_attention_heads} (hidden_size / 64), "
        f"layer_norm_eps={config.layer_norm_eps:g}, hidden_act={config.hidden_act} "
        f"(the {type(config).__name__} defaults) — pass --model DIR_OR_CONFIG to be sure"
    )


def _config_from(model: Path) -> dict[str, Any]:
    path = model / "config.json" if model.is_dir() else model
    if not path.is_file():
        raise InputError("no config.json there", model, "pass a model directory or config.json")
    return read_json_object(path)


def base_config(
    checkpoint: Checkpoint, model: Path | None, arch: str | None, infer_rules: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """(config, inferred): from --model, the checkpoint's own config.json, or its shapes."""
    if model is not None:
        return _config_from(model), False
    if checkpoint.config is not None:
        return dict(checkpoint.config), False
    if arch is not None:
        model_type = _tables_for(arch)[0].model_type  # phobert → roberta
        return _inferred_config(checkpoint, infer_rules, model_type), True
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
    config: dict[str, Any], class_name: str, num_labels: int | None, inferred: bool
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
    notes = [_inferred_note(config_obj)] if inferred else []
    out_config = config_obj.to_dict()
    out_config.pop("transformers_version", None)
    return Target(class_name, out_config, params, tied, instance.base_model_prefix, notes)
