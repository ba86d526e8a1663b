"""Shorthands and the shared vocabulary, expanded into the long form the rest of the loader reads.

A group may name whole layers instead of tensors: `dense: {query: attention/self/query}` is a
Keras Dense whose kernel (transposed) and bias fill the role `query` — the vocabulary
(mappings/shared/<vocabulary>.yaml) holds the role's PyTorch name and shape, the kind
(mappings/shared/kinds.yaml) the tensors a layer of that kind holds. `{base}` in a name is the
table's base_model_prefix and `{scope}` its source_scope (default: the same word), so one file of
source names (mappings/shared/names-*.yaml, pulled in by `include:`) serves BERT and RoBERTa alike.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from ..errors import MappingTableError

LONG_FORM = ("rules", "duplicates", "ties", "synthesize")


@dataclass(frozen=True)
class Kinds:
    params: dict[str, dict[str, str]]  # style → {sep, kernel, bias, gamma, beta}
    kinds: dict[str, list[dict[str, Any]]]  # kind → its tensors


def _fill(text: str, subs: dict[str, str]) -> str:
    for key, value in subs.items():
        text = text.replace("{" + key + "}", value)
    return text


def _substitute(value: Any, subs: dict[str, str]) -> Any:
    """Every string in a long-form entry with {base}/{scope} filled in."""
    if isinstance(value, str):
        return _fill(value, subs)
    if isinstance(value, list):
        return [_substitute(v, subs) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, subs) for k, v in value.items()}
    return value


def _entries(
    where: str, body: Any, roles: dict[str, dict], dst_prefix: str
) -> list[tuple[str, str, list]]:
    """(source stem, target stem, shape) for each layer a shorthand key names; a layer outside
    the vocabulary has the group's dst_prefix before its target."""
    if isinstance(body, dict):
        out = []
        for role, src in body.items():
            if role not in roles:
                near = difflib.get_close_matches(role, list(roles), n=1, cutoff=0.6)
                hint = f" (did you mean '{near[0]}'?)" if near else ""
                raise MappingTableError(f"{where}: unknown role '{role}'{hint}")
            out.append((src, roles[role]["dst"], list(roles[role]["shape"])))
        return out
    out = []
    for i, entry in enumerate(body):
        if "shape" not in entry:
            raise MappingTableError(f"{where}[{i}]: a layer outside the vocabulary needs a shape")
        out.append((entry["src"], dst_prefix + entry["dst"], list(entry["shape"])))
    return out


def expand_group(
    where: str,
    body: dict[str, Any] | None,
    kinds: Kinds,
    roles: dict[str, dict],
    style: str,
    subs: dict[str, str],
) -> dict[str, Any]:
    """One group in long form: its own long-form lists, then a rule per tensor of each layer."""
    body = body or {}
    params = kinds.params[style]
    prefix = body.get("src_prefix", "")
    dst_prefix = body.get("dst_prefix", "")
    group: dict[str, list] = {k: _substitute(list(body.get(k) or []), subs) for k in LONG_FORM}
    group["when_differ"] = list(body.get("when_differ") or [])
    for kind, parts in kinds.kinds.items():
        if kind not in body:
            continue
        for src, dst, shape in _entries(f"{where}.{kind}", body[kind], roles, dst_prefix):
            for part in parts:
                rule: dict[str, Any] = {
                    "src": _fill(prefix + src, subs)
                    + ("" if part.get("src") is None else params["sep"] + params[part["src"]]),
                    "dst": _fill(dst, subs) + (f".{part['dst']}" if part["dst"] else ""),
                    "shape": shape if part["shape"] == "weight" else shape[:1],
                }
                if part.get("ops"):
                    rule["ops"] = list(part["ops"])
                group["rules"].append(rule)
    return group
