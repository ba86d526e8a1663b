"""The known causes of a parity failure (mappings/shared/hypotheses.yaml), loaded and validated.

Data only: which config values, inputs and weight layouts a diagnosis may try, how each reads in a
sentence and which `tf2pt convert` option applies it. Tensors are named by role; `role_names`
turns roles into a table's PyTorch name patterns (its vocabulary, or the family's own names).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import MappingTableError
from .load import tables_dir
from .model import Table
from .schema import load_yaml
from .schemas import HYPOTHESES

FILE = "hypotheses"
SCOPES = ("embeddings", "layer", "head")  # where the first divergence is
TABLE_KEYS = ("position_offset",)  # what a config hypothesis may be `only_with`


@dataclass(frozen=True)
class ConfigHypothesis:
    """One config key and the values it may really have had."""

    key: str
    values: tuple[Any, ...]
    same: tuple[frozenset, ...]  # groups of values that name one function
    meaning: dict[str, str]
    says: str
    only_with: str = ""  # a table key (TABLE_KEYS) that must be set for this to be tried

    def applies(self, table: Table) -> bool:
        return not self.only_with or bool(getattr(table, self.only_with))

    def alike(self, a: Any, b: Any) -> bool:
        """`a` and `b` are the same value, or two names of one function."""
        return a == b or any(a in group and b in group for group in self.same)


@dataclass(frozen=True)
class InputHypothesis:
    drop: str  # the batch field the converted model is run without
    says: str


@dataclass(frozen=True)
class WeightChange:
    """Tensors changed together by one op: `tensors` are role paths (`query.weight`, or a bare
    role naming a tensor); for a swap, consecutive pairs are exchanged. `role`/`other` name the
    roles for the sentence."""

    op: str
    role: str
    other: str
    tensors: tuple[str, ...]
    says: str


@dataclass(frozen=True)
class OpSpec:
    does: str
    command: str  # the option template, "" when no option applies it yet
    per: int  # tensors per option (0: all in one)


@dataclass(frozen=True)
class Family:
    config_keys: dict[str, str] = field(default_factory=dict)
    heads_key: str = "num_attention_heads"
    roles: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Hypotheses:
    config: tuple[ConfigHypothesis, ...]
    inputs: tuple[InputHypothesis, ...]
    weights: dict[str, tuple[WeightChange, ...]]  # scope → changes
    ops: dict[str, OpSpec]
    config_command: str
    words: dict[str, str]
    families: dict[str, Family]

    def family(self, architecture: str) -> Family:
        return self.families.get(architecture, Family())

    def word(self, role: str) -> str:
        return self.words.get(role, role)


def _changes(where: str, entry: dict) -> list[WeightChange]:
    parts = entry.get("parts")
    if "pairs" in entry:
        out = []
        for i, pair in enumerate(entry["pairs"]):
            if len(pair) != 2:
                raise MappingTableError(f"{where}.pairs[{i}]: a pair names two roles")
            a, b = pair
            tensors = [f"{r}.{p}" for p in parts for r in (a, b)] if parts else [a, b]
            out.append(WeightChange(entry["op"], a, b, tuple(tensors), entry["says"]))
        return out
    out = []
    for path in entry["tensors"]:
        role = path.split(".", 1)[0]
        tensors = tuple(f"{path}.{part}" for part in parts) if parts else (path,)
        out.append(WeightChange(entry["op"], role, "", tensors, entry["says"]))
    return out


def parse_hypotheses(path: Path) -> Hypotheses:
    data = load_yaml(path, HYPOTHESES)
    ops = {
        name: OpSpec(spec["does"], spec.get("command", ""), int(spec.get("per", 0)))
        for name, spec in data["ops"].items()
    }
    weights = {}
    for scope in SCOPES:
        changes = []
        for i, entry in enumerate(data["weights"].get(scope) or []):
            where = f"{path}: weights.{scope}[{i}]"
            if entry["op"] not in ops:
                raise MappingTableError(f"{where}: op '{entry['op']}' is not declared under ops:")
            changes += _changes(where, entry)
        weights[scope] = tuple(changes)
    for i, c in enumerate(data["config"]):
        if c.get("only_with", TABLE_KEYS[0]) not in TABLE_KEYS:
            raise MappingTableError(
                f"{path}: config[{i}].only_with must be one of {', '.join(TABLE_KEYS)}"
            )
    return Hypotheses(
        config=tuple(
            ConfigHypothesis(
                c["key"],
                tuple(c["values"]),
                tuple(frozenset(group) for group in c.get("same") or []),
                dict(c.get("meaning") or {}),
                c["says"],
                str(c.get("only_with") or ""),
            )
            for c in data["config"]
        ),
        inputs=tuple(InputHypothesis(i["drop"], i["says"]) for i in data.get("inputs") or []),
        weights=weights,
        ops=ops,
        config_command=data["commands"]["config"],
        words=dict(data.get("words") or {}),
        families={
            name: Family(
                dict(f.get("config_keys") or {}),
                str(f.get("heads_key") or "num_attention_heads"),
                dict(f.get("roles") or {}),
            )
            for name, f in (data.get("families") or {}).items()
        },
    )


@cache
def load_hypotheses() -> Hypotheses:
    return parse_hypotheses(tables_dir() / "shared" / f"{FILE}.yaml")


def role_names(table: Table, hypotheses: Hypotheses) -> dict[str, str]:
    """Role → PyTorch name pattern for `table`: its vocabulary's, the family's own over them."""
    base = table.base_model_prefix
    family = hypotheses.family(table.architecture).roles
    return {**table.roles, **{r: n.replace("{base}", base) for r, n in family.items()}}
