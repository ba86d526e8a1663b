"""A fairseq RoBERTa-family `model.pt`: its transformers config, built from the args it stores,
and its dictionary, which numbers the embedding rows.

What is read where is data (mappings/doctor/fairseq.yaml); the tensor names are renamed by the
conversion table mappings/roberta-fairseq.yaml like any other layout's.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import InputError, MappingTableError
from ..tables import tables_dir
from ..tables.schema import load_yaml
from ..tables.schemas import FAIRSEQ


@dataclass(frozen=True)
class FairseqSpec:
    safe_globals: tuple[str, ...]
    weights: str
    config_keys: tuple[str, ...]
    model_args_entry: str
    config: dict[str, dict[str, Any]]
    fixed: dict[str, Any]
    must_be: tuple[dict[str, Any], ...]
    dictionary: dict[str, Any]
    split: tuple[dict[str, Any], ...]


@cache
def load_spec() -> FairseqSpec:
    path = tables_dir() / "doctor" / "fairseq.yaml"
    data = load_yaml(path, FAIRSEQ)
    try:
        for key, entry in data["config"].items():
            if not ({"arg", "tensor"} & set(entry)) or set(entry) - {
                "arg",
                "tensor",
                "axis",
                "add",
                "values",
            }:
                raise MappingTableError(f"{path}: config.{key} needs arg or tensor, nothing else")
            if "tensor" in entry:
                re.compile(entry["tensor"])
        return FairseqSpec(
            tuple(data["safe_globals"]),
            data["weights"],
            tuple(data["config_keys"]),
            data["model_args_entry"],
            dict(data["config"]),
            dict(data["fixed"]),
            tuple(data.get("must_be") or ()),
            dict(data["dictionary"]),
            tuple(data.get("split") or ()),
        )
    except (KeyError, TypeError, AttributeError, re.error) as exc:
        raise MappingTableError(f"{path}: malformed ({exc})") from None


def safe_classes() -> list[type]:
    """The classes torch.load(weights_only=True) may rebuild besides tensors and containers."""
    classes = []
    for dotted in load_spec().safe_globals:
        module, _, name = dotted.rpartition(".")
        classes.append(getattr(importlib.import_module(module), name))
    return classes


def is_fairseq(obj: Any) -> bool:
    spec = load_spec()
    return (
        isinstance(obj, dict)
        and isinstance(obj.get(spec.weights), dict)
        and any(obj.get(k) is not None for k in spec.config_keys)
    )


def _model_args(obj: dict) -> dict[str, Any]:
    """fairseq's model args as a dict: `cfg["model"]` (a Namespace or a dict), else `args`."""
    spec = load_spec()
    for key in spec.config_keys:
        found = obj.get(key)
        if isinstance(found, dict):
            found = found.get(spec.model_args_entry)
        if found is not None and not isinstance(found, dict):
            found = vars(found)
        if found:
            return dict(found)
    return {}


def split_fused(state: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The state with each fused q/k/v tensor replaced by its three row blocks (views, no copy)."""
    out: dict[str, Any] = {}
    fused = 0
    for name, tensor in state.items():
        rule = next((r for r in load_spec().split if name.endswith(r["suffix"])), None)
        if rule is None or getattr(tensor, "ndim", 0) == 0 or tensor.shape[0] % len(rule["into"]):
            out[name] = tensor
            continue
        stem = name.removesuffix(rule["suffix"])
        for part, block in zip(rule["into"], tensor.chunk(len(rule["into"])), strict=True):
            out[stem + part] = block
        fused += 1
    notes = [f"{fused} fused in_proj tensor(s) split into q/k/v by rows"] if fused else []
    return out, notes


def _from_shapes(pattern: str, axis: int, shapes: dict[str, tuple[int, ...]]) -> int | None:
    regex = re.compile(pattern)
    hit = next((s for n, s in sorted(shapes.items()) if regex.search(n)), None)
    return hit[axis] if hit is not None and len(hit) > axis else None


def fairseq_config(
    obj: dict, shapes: dict[str, tuple[int, ...]], path: Path
) -> tuple[dict[str, Any], list[str]]:
    """The transformers config of a fairseq checkpoint, and notes on where it came from."""
    spec = load_spec()
    args = _model_args(obj)
    for check in spec.must_be:
        if check["arg"] in args and args[check["arg"]] != check["value"]:
            raise InputError(
                f"fairseq {check['arg']}={args[check['arg']]!r}: {check['reason']}",
                path,
                "transformers' RoBERTa classes cannot load this model",
            )
    config: dict[str, Any] = dict(spec.fixed)
    for key, entry in spec.config.items():
        value = None
        if "tensor" in entry:
            value = _from_shapes(entry["tensor"], int(entry.get("axis", 0)), shapes)
        if value is None and entry.get("arg") in args:
            raw = args[entry["arg"]]
            value = (entry.get("values") or {}).get(raw, raw) if isinstance(raw, str) else raw
            if isinstance(value, int) and entry.get("add"):
                value += int(entry["add"])
        if value is not None:
            config[key] = value
    where = "cfg['model']" if isinstance(obj.get("cfg"), dict) else "args"
    notes = [f"a fairseq checkpoint: config built from its {where} and the weights' shapes"]
    return config, notes


def dictionary_ids(directory: Path, rows: int | None) -> tuple[dict[str, int], list[str]]:
    """Special token ids, and a note on how dict.txt numbers the embedding rows.

    fairseq's Dictionary puts <s>, <pad>, </s>, <unk> first, then dict.txt's entries, then
    madeupword padding, then <mask>: a tokenizer lines up with the embeddings only in that order.
    """
    spec = load_spec().dictionary
    specials = list(spec["specials"])
    ids = {key: specials.index(token) for key, token in spec["ids"].items()}
    file = directory / spec["file"]
    if not file.is_file():
        return ids, [f"no {spec['file']} beside the checkpoint: special tokens at fairseq's ids"]
    entries = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.rsplit(" ", 2) if line.strip() else []
        if len(fields) < 2:
            raise InputError(f"line {number} is not 'token count'", file)
        entries.append(fields[0])
    known = len(specials) + len(entries)
    if rows is None or rows < known:
        raise InputError(
            f"{len(entries)} entries + {len(specials)} specials do not fit the embedding's "
            f"{rows} rows",
            file,
            "this dict.txt is not the model's: use the one it was trained with",
        )
    extra = rows - known
    padding = max(0, extra - 1)
    tail = f" + {padding} {spec['padding'].format(0)}… padding" if padding else ""
    last = f" + {spec['last']} (id {rows - 1})" if extra else ""
    note = (
        f"{spec['file']}: {len(specials)} specials ({', '.join(specials)}) + {len(entries)} "
        f"entries{tail}{last} = {rows} embedding rows, in fairseq's order"
    )
    return ids, [note]
