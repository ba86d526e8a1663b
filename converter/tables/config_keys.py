"""What the mapping tables say about a model's config, so no module needs to know an
architecture's key names: which keys its weight shapes and layer placeholders name, the values
its family uses when a checkpoint has no config, and how dimensions are read off tensors named
the way the PyTorch model names them (the rules' targets and their shape specs)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..errors import MappingTableError, UsageError
from .load import load_table, table_names
from .model import Pattern, ShapeSpec, Table

CLASS_DEFAULT = "the transformers config class default"
# transformers' name, in every config class, for the length of the position table — the table a
# `position_offset` (RoBERTa's pad_token_id + 1 unused rows) belongs to.
POSITIONS_KEY = "max_position_embeddings"


def _shape_specs(table: Table) -> list[tuple[Pattern, ShapeSpec]]:
    """(target pattern, target shape spec) of every rule and synthesized parameter."""
    specs = []
    for group in table.groups.values():
        specs += [(r.dst, r.shape) for r in group.rules]
        specs += [(s.dst, s.shape) for s in group.synthesize]
    return specs


def model_keys(table: Table, family: Sequence[Table] = ()) -> list[str]:
    """The config keys that shape this table's model: those its shape specs and layer
    placeholders name, then the guessed and default values of it and its `family`."""
    keys = [d for _, spec in _shape_specs(table) for d in spec if isinstance(d, str)]
    keys += table.placeholders.values()
    for t in (table, *family):
        keys += list(t.config_guesses) + list(t.config_defaults) + list(t.family_defaults)
    return list(dict.fromkeys(keys))


def family_tables(arch: str) -> list[Table]:
    """Every table serving `arch` (an --arch or a config's model_type), by name."""
    tables = [load_table(n) for n in table_names()]
    matching = [t for t in tables if t.serves(arch)]
    if not matching:
        known = sorted({t.architecture for t in tables})
        raise UsageError(f"unknown architecture '{arch}'", hint=f"choose one of: {known}")
    return matching


def family_defaults(arch: str) -> dict[str, Any]:
    """The first family_defaults a table of this architecture declares (variants inherit)."""
    return next((dict(t.family_defaults) for t in family_tables(arch) if t.family_defaults), {})


@dataclass(frozen=True)
class Guess:
    """How a value no weight shows is guessed: `divide` / `by` (heads of a usual size), or,
    with neither, the config class's default — either way recorded as assumed."""

    key: str
    divide: str = ""
    by: int = 0

    def value(self, config: dict[str, Any]) -> tuple[Any, str]:
        """(the guessed value or None for the class default, how it was guessed)."""
        if self.divide and isinstance(config.get(self.divide), int):
            return max(1, config[self.divide] // self.by), f"guessed as {self.divide} / {self.by}"
        return None, CLASS_DEFAULT


GUESS_KEYS = ("divide", "by")  # what a `config_guesses:` entry may say


def _guess(where: str, key: str, entry: Any) -> Guess:
    entry = entry or {}
    if not isinstance(entry, dict) or set(entry) - set(GUESS_KEYS):
        raise MappingTableError(f"{where}: config_guesses.{key} takes only divide and by")
    if bool(entry.get("divide")) != bool(entry.get("by")):
        raise MappingTableError(f"{where}: config_guesses.{key} needs both divide and by")
    by = entry.get("by", 0)
    if not isinstance(by, int) or by < 0 or not isinstance(entry.get("divide", ""), str):
        raise MappingTableError(f"{where}: config_guesses.{key}: divide is a key, by a count")
    return Guess(key, str(entry.get("divide", "")), by)


def table_guesses(table: Table) -> dict[str, Guess]:
    where = f"mappings/{table.name}.yaml"
    return {k: _guess(where, k, v) for k, v in table.config_guesses.items()}


def config_guesses(arch: str) -> dict[str, Guess]:
    """The first config_guesses a table of this architecture declares (variants inherit)."""
    return next((table_guesses(t) for t in family_tables(arch) if t.config_guesses), {})


def written_keys(arch: str) -> tuple[str, ...]:
    """Keys a config written for this architecture always states (class defaults may change):
    its class and type, and every key that shapes the model."""
    tables = family_tables(arch)
    keys = ["architectures", "model_type"] + model_keys(tables[0], tables[1:])
    for table in tables[1:]:
        keys += model_keys(table)
    return tuple(dict.fromkeys(keys))


@dataclass(frozen=True)
class TargetRule:
    """A target name pattern, matched at the end of a key (after any wrapper or base prefix)."""

    regex: re.Pattern
    spec: ShapeSpec
    placeholders: dict[str, str]  # placeholder → the config key counting it
    position_offset: int


def compile_target_rules(tables: list[Table]) -> tuple[TargetRule, ...]:
    """Every target these tables produce, once each, whatever the source layout."""
    rules: dict[str, TargetRule] = {}
    for table in tables:
        base = table.base_model_prefix + "." if table.base_model_prefix else ""
        for dst, spec in _shape_specs(table):
            tail = Pattern.compile(dst.text.removeprefix(base))
            counted = {p: table.placeholders[p] for p in tail.placeholders}
            regex = re.compile(r"(?P<_pre>.*\.)?" + tail.regex.pattern)
            rules.setdefault(tail.text, TargetRule(regex, spec, counted, table.position_offset))
    return tuple(rules.values())


@cache
def target_rules(arch: str) -> tuple[TargetRule, ...]:
    """The targets of every table of `arch`."""
    return compile_target_rules(family_tables(arch))


def target_rule(key: str, rules: tuple[TargetRule, ...]) -> tuple[TargetRule, re.Match] | None:
    """The rule that produces the model key `key`, with its match."""
    for rule in rules:
        m = rule.regex.fullmatch(key)
        if m is not None:
            return rule, m
    return None


def dims_from_targets(
    shapes: dict[str, tuple[int, ...]], rules: tuple[TargetRule, ...]
) -> dict[str, int]:
    """Config values read off tensors named as the model names them: each axis a shape spec
    names, and each layer placeholder's count (the highest index + 1)."""
    dims: dict[str, int] = {}
    counts: dict[str, int] = {}
    for key, shape in sorted(shapes.items()):
        hit = target_rule(key, rules)
        if hit is None:
            continue
        rule, m = hit
        if len(shape) == len(rule.spec):
            for d, size in zip(rule.spec, shape, strict=True):
                if isinstance(d, str):
                    dims.setdefault(d, size)
        for name, config_key in rule.placeholders.items():
            counts[config_key] = max(counts.get(config_key, 0), int(m.group(name)) + 1)
    return dims | counts


def layer_of(key: str, rules: tuple[TargetRule, ...]) -> str | None:
    """The repeated block a model key belongs to ("encoder.layer.3"), by its rule's layer
    placeholders; None outside any."""
    hit = target_rule(key, rules)
    if hit is None or not hit[0].placeholders:
        return None
    rule, m = hit
    start = m.end("_pre") if m.group("_pre") else 0
    return key[start : max(m.end(name) for name in rule.placeholders)]
