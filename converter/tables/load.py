"""Load a mapping table (mappings/<name>.yaml): validate it, resolve `extends:` and `include:`,
expand shorthands, and compile each head once into the flat rules the planner uses."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import MappingTableError
from .model import (
    CompiledHead,
    Duplicate,
    Group,
    Head,
    IgnoreRule,
    Pattern,
    Rule,
    ShapeSpec,
    SourceConfigEntry,
    SourceNote,
    Synthesized,
    Table,
    Tie,
)
from .ops import build_op
from .reference import check_reference, merge_references
from .schema import load_yaml, validate
from .schemas import KINDS, VOCABULARY, names_schema, table_schema
from .shorthand import Kinds, expand_group

FILL_KINDS = {"zeros", "ones"}
SHARED = "shared"  # mappings/shared/: kinds, vocabularies and shared source names, not tables
DEFAULT_PARAMS = "keras"


def tables_dir() -> Path:
    return Path(str(resources.files("converter.mappings")))


def _shared(directory: Path, name: str) -> Path:
    """mappings/shared/<name>.yaml beside the tables, else the shipped one (tables under test
    in a temporary directory share the shipped kinds and vocabularies)."""
    path = directory / SHARED / f"{name}.yaml"
    return path if path.exists() else tables_dir() / SHARED / f"{name}.yaml"


@cache
def _kinds(directory: Path) -> Kinds:
    data = load_yaml(_shared(directory, "kinds"), KINDS)
    return Kinds(dict(data["params"]), dict(data["kinds"]))


def kinds_of(directory: Path | None = None) -> Kinds:
    return _kinds(directory or tables_dir())


@cache
def _vocabulary(directory: Path, name: str) -> dict[str, dict]:
    path = _shared(directory, name)
    if not path.exists():
        raise MappingTableError(f"no vocabulary named '{name}' in {path.parent}")
    return dict(load_yaml(path, VOCABULARY)["roles"])


def _included_groups(directory: Path, names: list[str], where: str) -> dict[str, Any]:
    groups: dict[str, Any] = {}
    schema = names_schema(tuple(kinds_of(directory).kinds))
    for name in names:
        path = _shared(directory, name)
        if not path.exists():
            raise MappingTableError(f"{where}: include '{name}': no file {path}")
        groups.update(load_yaml(path, schema)["groups"])
    return groups


def _with_included(directory: Path, data: dict, where: str) -> dict:
    """The table with its `include:`d groups under its own (a group it writes itself wins)."""
    if "include" not in data:
        return data
    data = dict(data)
    included = _included_groups(directory, data.pop("include"), where)
    data["groups"] = {**included, **(data.get("groups") or {})}
    return data


def _merge(parent: dict, child: dict) -> dict:
    """`extends:` semantics: child keys win; groups and heads merge by name; ignore appends."""
    merged = {**parent, **child}
    for key in ("groups", "heads", "config_defaults", "family_defaults", "placeholders"):
        merged[key] = {**(parent.get(key) or {}), **(child.get(key) or {})}
    merged["ignore"] = list(parent.get("ignore") or []) + list(child.get("ignore") or [])
    if parent.get("reference") or child.get("reference"):
        merged["reference"] = merge_references(parent.get("reference"), child.get("reference"))
    merged["extends"] = child["extends"]  # the direct parent, kept for `archs` and selection
    return merged


def raw_table(name: str, directory: Path, seen: tuple[str, ...] = ()) -> dict:
    """The table's YAML, validated, with included groups under its own and `extends:` resolved
    (shorthands are still short: parse_table expands them)."""
    path = directory / f"{name}.yaml"
    if name in seen:
        raise MappingTableError(f"{path}: extends cycle {' → '.join((*seen, name))}")
    if not path.exists():
        raise MappingTableError(f"no mapping table named '{name}' in {directory}")
    data = dict(load_yaml(path, table_schema(tuple(kinds_of(directory).kinds))))
    if data.get("schema") != 1:
        if "schema" not in data:
            raise MappingTableError(f"{path}: missing key(s) schema")
        raise MappingTableError(f"{path}: unsupported schema {data['schema']} (this tool reads 1)")
    data = _with_included(directory, data, str(path))
    if "extends" in data:
        return _merge(raw_table(data["extends"], directory, (*seen, name)), data)
    return data


def _shape(where: str, spec: Any) -> ShapeSpec:
    if not all(isinstance(d, int) or d.isidentifier() for d in spec):
        raise MappingTableError(f"{where}: shape must be a list of ints or config keys, got {spec}")
    return tuple(spec)


def _pattern(where: str, text: Any, allow_globs: bool = False) -> Pattern:
    if not isinstance(text, str) or not text:
        raise MappingTableError(f"{where}: pattern must be a non-empty string")
    try:
        return Pattern.compile(text, allow_globs)
    except ValueError as exc:
        raise MappingTableError(f"{where}: {exc}") from None


def _same_placeholders(where: str, a: Pattern, b: Pattern) -> None:
    if set(a.placeholders) != set(b.placeholders):
        raise MappingTableError(f"{where}: '{a.text}' and '{b.text}' use different placeholders")


def _group(where: str, data: dict) -> Group:
    """A long-form group (validated, shorthands expanded) as frozen rules."""
    rules = []
    for i, r in enumerate(data["rules"]):
        w = f"{where}.rules[{i}]"
        src, dst = _pattern(w, r["src"]), _pattern(w, r["dst"])
        _same_placeholders(w, src, dst)
        try:
            ops = tuple(build_op(o) for o in r.get("ops") or [])
        except ValueError as exc:
            raise MappingTableError(f"{w}: {exc}") from None
        rules.append(Rule(src, dst, ops, _shape(w, r["shape"])))
    dups = []
    for i, d in enumerate(data["duplicates"]):
        w = f"{where}.duplicates[{i}]"
        dup = Duplicate(_pattern(w, d["src"]), _pattern(w, d["same_as"]))
        _same_placeholders(w, dup.src, dup.same_as)
        dups.append(dup)
    ties = []
    for i, t in enumerate(data["ties"]):
        w = f"{where}.ties[{i}]"
        tie = Tie(_pattern(w, t["dst"]), _pattern(w, t["same_as"]))
        _same_placeholders(w, tie.dst, tie.same_as)
        ties.append(tie)
    synth = []
    for i, s in enumerate(data["synthesize"]):
        w = f"{where}.synthesize[{i}]"
        if s["fill"] not in FILL_KINDS:
            raise MappingTableError(f"{w}: fill must be one of {sorted(FILL_KINDS)}")
        synth.append(
            Synthesized(_pattern(w, s["dst"]), s["fill"], _shape(w, s["shape"]), str(s["reason"]))
        )
    return Group(
        tuple(rules), tuple(dups), tuple(ties), tuple(synth), tuple(data.get("when_differ") or ())
    )


def _ignore_rules(where: str, items: list) -> tuple[IgnoreRule, ...]:
    return tuple(
        IgnoreRule(_pattern(f"{where}[{i}]", item["pattern"], allow_globs=True), item["reason"])
        for i, item in enumerate(items or [])
    )


def _source_config(where: str, data: dict | None) -> dict[str, SourceConfigEntry]:
    return {k: _source_config_entry(f"{where}.{k}", v) for k, v in (data or {}).items()}


def _source_config_entry(where: str, data: dict) -> SourceConfigEntry:
    return SourceConfigEntry(
        key=data.get("key"),
        tensor=_pattern(where, data["tensor"]) if "tensor" in data else None,
        axis=int(data.get("axis") or 0),
        count=_pattern(where, data["count"]) if "count" in data else None,
        add=int(data.get("add") or 0),
        values=dict(data.get("values") or {}),
        or_tensor=_pattern(where, data["or_tensor"]) if "or_tensor" in data else None,
        divide=int(data.get("divide") or 0),
        why=str(data.get("why") or ""),
        required=bool(data.get("required", False)),
        note=str(data.get("note") or ""),
    )


def _config_defaults(data: dict | None) -> tuple[dict[str, Any], dict[str, str]]:
    """(key → default value, key → why it is the producer's) from `config_defaults:`, whose
    entries are a bare value or `{value, why}`."""
    values, reasons = {}, {}
    for key, entry in (data or {}).items():
        if isinstance(entry, dict):
            values[key] = entry["value"]
            if entry.get("why"):
                reasons[key] = str(entry["why"])
        else:
            values[key] = entry
    return values, reasons


def _head(where: str, name: str, body: dict, groups: dict[str, Group]) -> Head:
    unknown = [g for g in body["groups"] if g not in groups]
    if unknown:
        raise MappingTableError(f"{where}: unknown group(s) {unknown}")
    return Head(
        name,
        body["class"],
        tuple(body["groups"]),
        dict(body.get("when") or {}),
        body.get("labels_from"),
        bool(body.get("bare", False)),
        str(body.get("source_class") or ""),
        _ignore_rules(f"{where}.ignore", body.get("ignore")),
        _source_config(f"{where}.source_config", body.get("source_config")),
        bool(body.get("default", False)),
    )


def _check_head_targets(where: str, groups: list[Group]) -> None:
    """Within one head, no two rules may produce the same target or consume the same source."""
    seen_dst: set[str] = set()
    seen_src: set[str] = set()
    for group in groups:
        dsts = [r.dst.text for r in group.rules] + [t.dst.text for t in group.ties]
        for d in dsts + [s.dst.text for s in group.synthesize]:
            if d in seen_dst:
                raise MappingTableError(f"{where}: target '{d}' is produced twice")
            seen_dst.add(d)
        for s in [r.src.text for r in group.rules] + [d.src.text for d in group.duplicates]:
            if s in seen_src:
                raise MappingTableError(f"{where}: source '{s}' is consumed twice")
            seen_src.add(s)


REQUIRED = ("architecture", "layout", "model_type", "class_prefix", "groups", "heads")


def _checked(where: str, data: dict, directory: Path, kinds: Kinds) -> tuple[dict, str]:
    """The table's YAML validated against the schema, its `include:` files merged in, and the
    `source_params` style its shorthand names tensors by."""
    validate(where, data, table_schema(tuple(kinds.kinds)))
    data = _with_included(directory, data, where)
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise MappingTableError(f"{where}: missing key(s) {', '.join(missing)}")
    style = str(data.get("source_params") or DEFAULT_PARAMS)
    if style not in kinds.params:
        raise MappingTableError(
            f"{where}: source_params '{style}' is not one of {', '.join(sorted(kinds.params))}"
        )
    return data, style


def _groups(
    where: str, data: dict, kinds: Kinds, style: str, roles: dict[str, Any]
) -> dict[str, Group]:
    """Every group, its shorthand expanded into rules, each source placeholder declared."""
    base = str(data.get("base_model_prefix") or "")
    subs = {"base": base, "scope": str(data.get("source_scope") or base)}
    placeholders = set(data.get("placeholders") or {})
    groups = {}
    for g, body in data["groups"].items():
        w = f"{where}: groups.{g}"
        groups[g] = _group(w, expand_group(w, body, kinds, roles, style, subs))
        for rule in groups[g].rules:
            if set(rule.src.placeholders) - placeholders:
                raise MappingTableError(
                    f"{w}: '{rule.src.text}' uses a placeholder not declared under placeholders:"
                )
    return groups


def _heads(where: str, data: dict, groups: dict[str, Group]) -> dict[str, Head]:
    heads = {h: _head(f"{where}: heads.{h}", h, b, groups) for h, b in data["heads"].items()}
    for h, head in heads.items():
        _check_head_targets(f"{where}: heads.{h}", [groups[g] for g in head.groups])
    return heads


def parse_table(name: str, data: dict, directory: Path | None = None) -> Table:
    """A Table from its merged YAML (see raw_table); shared files come from `directory`."""
    where = f"mappings/{name}.yaml"
    directory = directory or tables_dir()
    kinds = kinds_of(directory)
    data, style = _checked(where, data, directory, kinds)
    roles = _vocabulary(directory, data["vocabulary"]) if "vocabulary" in data else {}
    groups = _groups(where, data, kinds, style, roles)
    base = str(data.get("base_model_prefix") or "")
    heads = _heads(where, data, groups)
    ignore = _ignore_rules(f"{where}: ignore", data.get("ignore"))
    defaults, reasons = _config_defaults(data.get("config_defaults"))
    return Table(
        name=name,
        architecture=data["architecture"],
        layout=data["layout"],
        model_type=data["model_type"],
        model_types=tuple(data.get("model_types") or [data["model_type"]]),
        class_prefix=data["class_prefix"],
        base_model_prefix=base,
        placeholders=dict(data.get("placeholders") or {}),
        config_defaults=defaults,
        config_reasons=reasons,
        position_offset=int(data.get("position_offset") or 0),
        groups=groups,
        heads=heads,
        ignore=ignore,
        description=str(data.get("description") or ""),
        extends=str(data.get("extends") or ""),
        keep_source_config=bool(data.get("keep_source_config", False)),
        family_defaults=dict(data.get("family_defaults") or {}),
        source_config=_source_config(f"{where}: source_config", data.get("source_config")),
        source_notes=tuple(
            SourceNote(str(n["key"]), tuple(n.get("unless") or ()), str(n["note"]))
            for n in data.get("source_notes") or []
        ),
        reference=check_reference(where, data.get("reference"), set(heads)),
        config_guesses=dict(data.get("config_guesses") or {}),
        requires_config=str(data.get("requires_config") or ""),
        head_count_key=str(data.get("head_count_key") or "num_attention_heads"),
        roles={role: entry["dst"].replace("{base}", base) for role, entry in roles.items()},
        compiled_heads={
            h: CompiledHead.of([groups[g] for g in head.groups], head.ignore + ignore)
            for h, head in heads.items()
        },
    )


@cache
def load_table(name: str) -> Table:
    directory = tables_dir()
    return parse_table(name, raw_table(name, directory), directory)


def table_names() -> list[str]:
    return sorted(p.stem for p in tables_dir().glob("*.yaml"))
