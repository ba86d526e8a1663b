"""Load and validate the YAML mapping tables (mappings/*.yaml), resolving `extends:`.

A table is data: rules that rename one source pattern to one target pattern with declared ops,
grouped so that heads can share them. Placeholders such as `{L}` match digits only and must match
the whole name, so `layer_._1` can never be confused with `layer_._10`. `{_L}` is Keras 3's
auto-naming suffix: nothing for 0 (`transformer_encoder`), `_N` for N ≥ 1 (`transformer_encoder_3`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError, MappingTableError
from .ops import Op, build_op

PLACEHOLDER = re.compile(r"\{(_?)([A-Z])\}")

TOP_KEYS = {
    "schema",
    "extends",
    "architecture",
    "layout",
    "model_type",
    "class_prefix",
    "model_types",
    "base_model_prefix",
    "placeholders",
    "config_defaults",
    "family_defaults",
    "position_offset",
    "groups",
    "heads",
    "ignore",
    "description",
    "source_config",
    "source_notes",
    "keep_source_config",
    "runner",
}
GROUP_KEYS = {"rules", "duplicates", "ties", "synthesize", "when_differ"}
RULE_KEYS = {"src", "dst", "ops", "shape", "note"}
DUPLICATE_KEYS = {"src", "same_as", "note"}
TIE_KEYS = {"dst", "same_as", "note"}
SYNTH_KEYS = {"dst", "fill", "shape", "reason"}
HEAD_KEYS = {"class", "groups", "when", "labels_from", "bare", "description", "source_class"}
SOURCE_CONFIG_KEYS = {"key", "tensor", "or_tensor", "axis", "count", "add", "values", "note"}
SOURCE_NOTE_KEYS = {"key", "unless", "note"}
IGNORE_KEYS = {"pattern", "reason"}


@dataclass(frozen=True)
class Pattern:
    """A name pattern: literal text with `{X}` digit placeholders, or `*`/`**` globs."""

    text: str
    regex: re.Pattern = field(compare=False, repr=False)
    placeholders: tuple[str, ...] = ()

    @classmethod
    def compile(cls, text: str, allow_globs: bool = False) -> Pattern:
        out, names, pos = [], [], 0
        globs = r"|\*\*|\*" if allow_globs else ""
        for m in re.finditer(r"\{(_?)([A-Z])\}" + globs, text):
            out.append(re.escape(text[pos : m.start()]))
            suffix, name = m.group(1), m.group(2)
            if name and name in names:
                if suffix:
                    raise ValueError(f"'{{_{name}}}' may appear only once in '{text}'")
                out.append(f"(?P={name})")
            elif suffix:  # Keras auto-name suffix: "" for 0, "_N" for N >= 1
                names.append(name)
                out.append(f"(?:_(?P<{name}>[1-9][0-9]*))?")
            elif name:
                names.append(name)
                out.append(f"(?P<{name}>0|[1-9][0-9]*)")
            else:
                out.append(".*" if m.group(0) == "**" else "[^/]*")
            pos = m.end()
        out.append(re.escape(text[pos:]))
        leftover = PLACEHOLDER.sub("", text)
        if "{" in leftover or "}" in leftover:
            raise ValueError(
                f"bad placeholder in pattern '{text}' (use one capital letter: {{L}} or {{_L}})"
            )
        return cls(text, re.compile("".join(out)), tuple(names))

    def match(self, name: str) -> dict[str, int] | None:
        m = self.regex.fullmatch(name)
        return None if m is None else {k: int(v or 0) for k, v in m.groupdict().items()}

    def fill(self, values: dict[str, int]) -> str:
        def one(m: re.Match) -> str:
            value = values[m.group(2)]
            return ("" if value == 0 else f"_{value}") if m.group(1) else str(value)

        return PLACEHOLDER.sub(one, self.text)


ShapeSpec = tuple[int | str, ...]


@dataclass(frozen=True)
class Rule:
    src: Pattern
    dst: Pattern
    ops: tuple[Op, ...]
    shape: ShapeSpec


@dataclass(frozen=True)
class Duplicate:
    """A source tensor that is a stored copy of another source tensor; must be identical."""

    src: Pattern
    same_as: Pattern


@dataclass(frozen=True)
class Tie:
    """A target parameter that shares storage with another target (written once)."""

    dst: Pattern
    same_as: Pattern


@dataclass(frozen=True)
class Synthesized:
    """A target parameter with no source tensor, filled by a declared rule with a reason."""

    dst: Pattern
    fill: str
    shape: ShapeSpec
    reason: str


@dataclass(frozen=True)
class Group:
    rules: tuple[Rule, ...] = ()
    duplicates: tuple[Duplicate, ...] = ()
    ties: tuple[Tie, ...] = ()
    synthesize: tuple[Synthesized, ...] = ()
    # Config keys whose values must differ for the PyTorch class to have this group's parameters
    # (ElectraModel builds `embeddings_project` only when embedding_size != hidden_size).
    when_differ: tuple[str, ...] = ()

    def applies(self, dims: dict[str, Any]) -> bool:
        return len({dims.get(k) for k in self.when_differ}) == len(self.when_differ)


@dataclass(frozen=True)
class Head:
    name: str
    class_suffix: str
    groups: tuple[str, ...]
    when: dict[str, Any]
    labels_from: str | None
    bare: bool  # the base model itself: its parameters carry no `<base_model_prefix>.`
    source_class: str = ""  # the class in the source framework (keras-hub), for its TF runner


@dataclass(frozen=True)
class SourceConfigEntry:
    """Where a foreign-layout source keeps one HF config value: a key of its own config (dotted
    path), else a dimension of a tensor or a count of layers — a bare weight file has no config.
    `add` is added to the source value (keras-hub drops RoBERTa's 2 unused position rows)."""

    key: str | None
    tensor: Pattern | None
    axis: int
    count: Pattern | None
    add: int
    values: dict[Any, Any] = field(default_factory=dict)  # source value → HF value, if they differ
    or_tensor: Pattern | None = None  # where the value is when `tensor` is absent (another head)


@dataclass(frozen=True)
class SourceNote:
    """A note for the report when the source config holds a value the PyTorch model ignores."""

    key: str
    unless: tuple[Any, ...]
    note: str


@dataclass(frozen=True)
class IgnoreRule:
    pattern: Pattern
    reason: str


@dataclass(frozen=True)
class Table:
    name: str
    architecture: str
    layout: str
    model_type: str
    model_types: tuple[str, ...]
    class_prefix: str
    base_model_prefix: str
    placeholders: dict[str, str]
    config_defaults: dict[str, Any]
    position_offset: int
    groups: dict[str, Group]
    heads: dict[str, Head]
    ignore: tuple[IgnoreRule, ...]
    description: str = ""
    source_config: dict[str, SourceConfigEntry] = field(default_factory=dict)
    source_notes: tuple[SourceNote, ...] = ()
    extends: str = ""  # the table this one is a variant of
    keep_source_config: bool = False  # start from the source config (its keys are HF keys)
    # What the architecture family's checkpoints use for values weights cannot show (eps,
    # activation, pad id), for a checkpoint that comes without any config (`tf2pt doctor`).
    family_defaults: dict[str, Any] = field(default_factory=dict)
    runner: str = ""  # the TF reference for parity, when the layout has several (TF2 sources)

    def serves(self, name: str) -> bool:
        """`name` (an --arch or a config's model_type) is this table's architecture."""
        return name == self.architecture or name in self.model_types

    def class_name(self, head: str) -> str:
        return self.class_prefix + self.heads[head].class_suffix

    def head_groups(self, head: str) -> list[Group]:
        return [self.groups[g] for g in self.heads[head].groups]

    def target_name(self, head: str, name: str) -> str:
        """Targets are written with the base-model prefix; the bare base model drops it."""
        if self.heads[head].bare and self.base_model_prefix:
            return name.removeprefix(self.base_model_prefix + ".")
        return name

    def head_for_class(self, class_name: str) -> str | None:
        """The head of a PyTorch or TF class name, or of a source-framework class (keras-hub)."""
        name = class_name.removeprefix("TF")
        return next(
            (h for h in self.heads if name in (self.class_name(h), self.heads[h].source_class)),
            None,
        )


FILL_KINDS = {"zeros", "ones"}


def _check_keys(where: str, data: Any, allowed: set[str], required: set[str] = frozenset()):
    if not isinstance(data, dict):
        raise MappingTableError(f"{where}: expected a mapping, got {type(data).__name__}")
    unknown = set(data) - allowed
    if unknown:
        raise MappingTableError(
            f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
        )
    missing = set(required) - set(data)
    if missing:
        raise MappingTableError(f"{where}: missing key(s) {sorted(missing)}")


def _shape(where: str, spec: Any) -> ShapeSpec:
    if not isinstance(spec, list) or not all(
        isinstance(d, int) or (isinstance(d, str) and d.isidentifier()) for d in spec
    ):
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
    _check_keys(where, data, GROUP_KEYS)
    rules = []
    for i, r in enumerate(data.get("rules") or []):
        w = f"{where}.rules[{i}]"
        _check_keys(w, r, RULE_KEYS, {"src", "dst", "shape"})
        src, dst = _pattern(w, r["src"]), _pattern(w, r["dst"])
        _same_placeholders(w, src, dst)
        try:
            ops = tuple(build_op(o) for o in r.get("ops") or [])
        except ValueError as exc:
            raise MappingTableError(f"{w}: {exc}") from None
        rules.append(Rule(src, dst, ops, _shape(w, r["shape"])))
    dups = []
    for i, d in enumerate(data.get("duplicates") or []):
        w = f"{where}.duplicates[{i}]"
        _check_keys(w, d, DUPLICATE_KEYS, {"src", "same_as"})
        dup = Duplicate(_pattern(w, d["src"]), _pattern(w, d["same_as"]))
        _same_placeholders(w, dup.src, dup.same_as)
        dups.append(dup)
    ties = []
    for i, t in enumerate(data.get("ties") or []):
        w = f"{where}.ties[{i}]"
        _check_keys(w, t, TIE_KEYS, {"dst", "same_as"})
        tie = Tie(_pattern(w, t["dst"]), _pattern(w, t["same_as"]))
        _same_placeholders(w, tie.dst, tie.same_as)
        ties.append(tie)
    synth = []
    for i, s in enumerate(data.get("synthesize") or []):
        w = f"{where}.synthesize[{i}]"
        _check_keys(w, s, SYNTH_KEYS, {"dst", "fill", "shape", "reason"})
        if s["fill"] not in FILL_KINDS:
            raise MappingTableError(f"{w}: fill must be one of {sorted(FILL_KINDS)}")
        synth.append(
            Synthesized(_pattern(w, s["dst"]), s["fill"], _shape(w, s["shape"]), str(s["reason"]))
        )
    differ = data.get("when_differ") or []
    if not isinstance(differ, list) or not all(isinstance(k, str) for k in differ):
        raise MappingTableError(f"{where}.when_differ: expected a list of config keys")
    return Group(tuple(rules), tuple(dups), tuple(ties), tuple(synth), tuple(differ))


def _merge(parent: dict, child: dict) -> dict:
    """`extends:` semantics: child keys win; groups and heads merge by name; ignore appends."""
    merged = {**parent, **child}
    for key in ("groups", "heads", "config_defaults", "family_defaults", "placeholders"):
        merged[key] = {**(parent.get(key) or {}), **(child.get(key) or {})}
    merged["ignore"] = list(parent.get("ignore") or []) + list(child.get("ignore") or [])
    merged["extends"] = child["extends"]  # the direct parent, kept for `archs` and selection
    return merged


def _raw(name: str, directory: Path, seen: tuple[str, ...] = ()) -> dict:
    path = directory / f"{name}.yaml"
    if name in seen:
        raise MappingTableError(f"{path}: extends cycle {' → '.join((*seen, name))}")
    if not path.exists():
        raise MappingTableError(f"no mapping table named '{name}' in {directory}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise MappingTableError(f"{path}: invalid YAML ({exc})") from None
    _check_keys(str(path), data, TOP_KEYS, {"schema"})
    if data["schema"] != 1:
        raise MappingTableError(f"{path}: unsupported schema {data['schema']} (this tool reads 1)")
    if "extends" in data:
        return _merge(_raw(data["extends"], directory, (*seen, name)), data)
    return data


def parse_table(name: str, data: dict) -> Table:
    where = f"mappings/{name}.yaml"
    _check_keys(
        where,
        data,
        TOP_KEYS,
        {"architecture", "layout", "model_type", "class_prefix", "groups", "heads"},
    )
    groups = {g: _group(f"{where}: groups.{g}", body or {}) for g, body in data["groups"].items()}
    heads = {}
    for h, body in data["heads"].items():
        w = f"{where}: heads.{h}"
        _check_keys(w, body, HEAD_KEYS, {"class", "groups"})
        unknown = [g for g in body["groups"] if g not in groups]
        if unknown:
            raise MappingTableError(f"{w}: unknown group(s) {unknown}")
        heads[h] = Head(
            h,
            body["class"],
            tuple(body["groups"]),
            dict(body.get("when") or {}),
            body.get("labels_from"),
            bool(body.get("bare", False)),
            str(body.get("source_class") or ""),
        )
        _check_head_targets(w, [groups[g] for g in heads[h].groups])
    ignore = []
    for i, item in enumerate(data.get("ignore") or []):
        w = f"{where}: ignore[{i}]"
        _check_keys(w, item, IGNORE_KEYS, {"pattern", "reason"})
        ignore.append(IgnoreRule(_pattern(w, item["pattern"], allow_globs=True), item["reason"]))
    placeholders = dict(data.get("placeholders") or {})
    for g, group in groups.items():
        for rule in group.rules:
            if set(rule.src.placeholders) - set(placeholders):
                raise MappingTableError(
                    f"{where}: groups.{g}: '{rule.src.text}' uses a "
                    f"placeholder not declared under placeholders:"
                )
    return Table(
        name=name,
        architecture=data["architecture"],
        layout=data["layout"],
        model_type=data["model_type"],
        model_types=tuple(data.get("model_types") or [data["model_type"]]),
        class_prefix=data["class_prefix"],
        base_model_prefix=str(data.get("base_model_prefix") or ""),
        placeholders=placeholders,
        config_defaults=dict(data.get("config_defaults") or {}),
        position_offset=int(data.get("position_offset") or 0),
        groups=groups,
        heads=heads,
        ignore=tuple(ignore),
        description=str(data.get("description") or ""),
        extends=str(data.get("extends") or ""),
        keep_source_config=bool(data.get("keep_source_config", False)),
        family_defaults=_family_defaults(f"{where}: family_defaults", data.get("family_defaults")),
        runner=str(data.get("runner") or ""),
        source_config={
            k: _source_config_entry(f"{where}: source_config.{k}", v)
            for k, v in (data.get("source_config") or {}).items()
        },
        source_notes=tuple(
            _source_note(f"{where}: source_notes[{i}]", n)
            for i, n in enumerate(data.get("source_notes") or [])
        ),
    )


def _family_defaults(where: str, data: Any) -> dict[str, Any]:
    """Config key → a plain value (number, string, bool), nothing nested."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MappingTableError(f"{where}: expected a mapping, got {type(data).__name__}")
    for key, value in data.items():
        if not isinstance(key, str) or not isinstance(value, int | float | str | bool):
            raise MappingTableError(f"{where}: {key} must map to a number, string or bool")
    return dict(data)


def _source_config_entry(where: str, data: Any) -> SourceConfigEntry:
    _check_keys(where, data, SOURCE_CONFIG_KEYS)
    if not ({"key", "tensor", "count"} & set(data)):
        raise MappingTableError(f"{where}: needs at least one of key, tensor, count")
    if "tensor" in data and not isinstance(data.get("axis"), int):
        raise MappingTableError(f"{where}: a tensor entry needs an integer axis")
    return SourceConfigEntry(
        key=data.get("key"),
        tensor=_pattern(where, data["tensor"]) if "tensor" in data else None,
        axis=int(data.get("axis") or 0),
        count=_pattern(where, data["count"]) if "count" in data else None,
        add=int(data.get("add") or 0),
        values=dict(data.get("values") or {}),
        or_tensor=_pattern(where, data["or_tensor"]) if "or_tensor" in data else None,
    )


def _source_note(where: str, data: Any) -> SourceNote:
    _check_keys(where, data, SOURCE_NOTE_KEYS, {"key", "note"})
    return SourceNote(str(data["key"]), tuple(data.get("unless") or ()), str(data["note"]))


def _check_head_targets(where: str, groups: list[Group]) -> None:
    """Within one head, no two rules may produce the same target or consume the same source."""
    seen_dst: dict[str, str] = {}
    seen_src: dict[str, str] = {}
    for group in groups:
        dsts = [r.dst.text for r in group.rules] + [t.dst.text for t in group.ties]
        dsts += [s.dst.text for s in group.synthesize]
        for d in dsts:
            if d in seen_dst:
                raise MappingTableError(f"{where}: target '{d}' is produced twice")
            seen_dst[d] = d
        for s in [r.src.text for r in group.rules] + [d.src.text for d in group.duplicates]:
            if s in seen_src:
                raise MappingTableError(f"{where}: source '{s}' is consumed twice")
            seen_src[s] = s


def tables_dir() -> Path:
    return Path(str(resources.files("converter.mappings")))


@cache
def load_table(name: str) -> Table:
    directory = tables_dir()
    return parse_table(name, _raw(name, directory))


def table_names() -> list[str]:
    return sorted(p.stem for p in tables_dir().glob("*.yaml"))


def _fit(table: Table, names: list[str]) -> tuple[int, int]:
    """(source names no rule or ignore rule of `table` places, names its rules map)."""
    rules = [r.src for g in table.groups.values() for r in g.rules]
    rules += [d.src for g in table.groups.values() for d in g.duplicates]
    mapped = sum(1 for n in names if any(p.match(n) is not None for p in rules))
    ignored = sum(
        1
        for n in names
        if not any(p.match(n) is not None for p in rules)
        and any(i.pattern.match(n) is not None for i in table.ignore)
    )
    return len(names) - mapped - ignored, mapped


def _select_by_fit(layout: str, tables: list[Table], names: list[str]) -> Table:
    """A config-less source (a TF2 checkpoint) picks its table by its tensor names, as a head is
    picked: the one table that places every name, else the one that maps the most; a tie is an
    error rather than a guess."""
    fits = {t.name: _fit(t, names) for t in tables}
    complete = [t for t in tables if fits[t.name][0] == 0 and fits[t.name][1] > 0]
    if len(complete) == 1:
        return complete[0]
    pool = complete or [t for t in tables if fits[t.name][1] > 0]
    best = max((fits[t.name][1] for t in pool), default=0)
    top = [t for t in pool if fits[t.name][1] == best]
    if len(top) == 1:
        return top[0]
    if not top:
        raise InputError(
            f"no {layout} mapping table recognises any of its {len(names)} tensor names",
            hint="unknown producer; tf2pt inspect lists the names, tf2pt archs the known layouts",
        )
    raise InputError(
        f"its tensor names fit several {layout} tables equally: " + ", ".join(t.name for t in top),
        hint="choose one with --arch",
    )


def _refuse_variant_without_config(
    layout: str, tables: list[Table], of_layout: list[Table], names: list[str]
) -> None:
    """Tensor names that only a variant table places (one that `extends:` another and takes its
    sizes from the config, e.g. a Keras save_weights checkpoint) came without their config."""

    def places_all(table: Table) -> bool:
        unplaced, mapped = _fit(table, names)
        return unplaced == 0 and mapped > 0

    if any(places_all(t) for t in of_layout):
        return
    variants = [t for t in tables if t.layout == layout and t.extends and places_all(t)]
    if variants:
        raise InputError(
            f"its tensor names are those of {variants[0].description}, "
            "which needs the model's config.json and none is next to it",
            hint="put the config.json of the model beside the checkpoint "
            "(model.config.save_pretrained(dir) writes one)",
        )


def select_table(
    layout: str, model_type: str | None, arch: str | None = None, names: list[str] | None = None
) -> Table:
    """The table for this layout whose architecture (or accepted model_types) fits; without a
    config naming one, the layout's only table, or (given the source's tensor `names`) the
    table that fits them."""
    wanted = arch or model_type
    tables = [load_table(n) for n in table_names()]
    if wanted is None:  # no config names it (a TF1 checkpoint): the layout's own architecture
        of_layout = [t for t in tables if t.layout == layout and not t.extends]
        if len(of_layout) == 1:
            return of_layout[0]
        if names is not None and of_layout:
            _refuse_variant_without_config(layout, tables, of_layout, names)
            return _select_by_fit(layout, of_layout, names)
    of_arch = [t for t in tables if t.layout == layout and t.serves(wanted)]
    if len(of_arch) > 1 and names is not None:
        return _select_by_fit(layout, of_arch, names)
    if of_arch:
        return of_arch[0]
    known = sorted({m for t in tables if t.layout == layout for m in t.model_types})
    raise InputError(
        f"model_type '{wanted}' is not a supported architecture for {layout} checkpoints",
        hint=f"supported: {', '.join(known) or 'none'}",
    )
