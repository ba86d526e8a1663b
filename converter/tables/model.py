"""What a mapping table says, as frozen data: name patterns, per-tensor rules, heads, and each
head compiled once into the flat rule list the planner matches tensors against.

Placeholders such as `{L}` match digits only and must match the whole name, so `layer_._1` can
never be confused with `layer_._10`. `{_L}` is Keras 3's auto-naming suffix: nothing for 0
(`transformer_encoder`), `_N` for N >= 1 (`transformer_encoder_3`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from .ops import Op

PLACEHOLDER = re.compile(r"\{(_?)([A-Z])\}")


@functools.cache
def _compiled(cls: type[Pattern], text: str, allow_globs: bool) -> Pattern:
    return cls._build(text, allow_globs)


@dataclass(frozen=True)
class Pattern:
    """A name pattern: literal text with `{X}` digit placeholders, or `*`/`**` globs."""

    text: str
    regex: re.Pattern = field(compare=False, repr=False)
    placeholders: tuple[str, ...] = ()

    @classmethod
    def compile(cls, text: str, allow_globs: bool = False) -> Pattern:
        """The pattern for `text`, compiled once per process: the tables repeat their shared
        names (706 distinct of 2,065), and choosing a table loads every one of them."""
        return _compiled(cls, text, allow_globs)

    @classmethod
    def _build(cls, text: str, allow_globs: bool) -> Pattern:
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
    # Tensors this head does not use, with reasons (a checkpoint holding two models: converting
    # one accounts for the other's tensors), checked before the table's own ignore rules.
    ignore: tuple[IgnoreRule, ...] = ()
    # Where this head's config values are, when they differ from the table's (the other model).
    source_config: dict[str, SourceConfigEntry] = field(default_factory=dict)
    default: bool = False  # converted when several heads fit (a two-model checkpoint's main one)


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
    divide: int = 0  # a weight-derived value counts `divide`-wide parts, at least one (heads)
    why: str = ""  # why a translated (values, add) or guessed (divide) value is the producer's
    required: bool = False  # a source that records it nowhere is refused, `note` saying why
    note: str = ""


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
    # The TF reference for parity, as declared (validated by the verify side, not here).
    reference: dict[str, Any] = field(default_factory=dict)
    config_guesses: dict[str, Any] = field(default_factory=dict)  # for config-less checkpoints
    requires_config: str = ""  # the config file the producer ships; refused without it
    # Why each config default is the producer's (`{value, why}` in the YAML), for the reports.
    config_reasons: dict[str, str] = field(default_factory=dict)
    head_count_key: str = "num_attention_heads"  # the config key of the attention head count
    # The vocabulary's roles (mappings/shared/<vocabulary>.yaml) as PyTorch name patterns with
    # {base} filled in: what a diagnosis names tensors by (mappings/shared/hypotheses.yaml).
    roles: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    # Each head's groups flattened once, at load: what the planner matches tensors against.
    compiled_heads: dict[str, CompiledHead] = field(default_factory=dict, compare=False, repr=False)

    def serves(self, name: str) -> bool:
        """`name` (an --arch or a config's model_type) is this table's architecture."""
        return name == self.architecture or name in self.model_types

    def class_name(self, head: str) -> str:
        return self.class_prefix + self.heads[head].class_suffix

    def head_groups(self, head: str) -> list[Group]:
        return [self.groups[g] for g in self.heads[head].groups]

    def compiled(self, head: str, dims: dict[str, Any] | None = None) -> CompiledHead:
        """The head's rules, duplicates, ties, synthesized targets and ignore rules, flat; given
        the config's `dims`, without the groups its PyTorch class does not build for them."""
        compiled = self.compiled_heads[head]
        groups = [self.groups[g] for g in self.heads[head].groups]
        if dims is None or all(g.applies(dims) for g in groups):
            return compiled
        return CompiledHead.of([g for g in groups if g.applies(dims)], compiled.ignore)

    def source_config_for(self, head: str | None) -> dict[str, SourceConfigEntry]:
        """The table's source_config with the head's own entries over it."""
        if head is None or head not in self.heads:
            return self.source_config
        return {**self.source_config, **self.heads[head].source_config}

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


@dataclass(frozen=True)
class CompiledHead:
    """One head of a table as flat tuples, with its source patterns indexed for matching: names
    without placeholders are looked up in a dict, only patterned ones are tried one by one."""

    rules: tuple[Rule, ...]
    duplicates: tuple[Duplicate, ...]
    ties: tuple[Tie, ...]
    synthesize: tuple[Synthesized, ...]
    ignore: tuple[IgnoreRule, ...]
    _literal_rules: dict[str, tuple[Rule, ...]] = field(repr=False, compare=False)
    _patterned_rules: tuple[Rule, ...] = field(repr=False, compare=False)
    _literal_dups: dict[str, tuple[Duplicate, ...]] = field(repr=False, compare=False)
    _patterned_dups: tuple[Duplicate, ...] = field(repr=False, compare=False)

    @classmethod
    def of(cls, groups: list[Group], ignore: tuple[IgnoreRule, ...]) -> CompiledHead:
        rules = tuple(r for g in groups for r in g.rules)
        dups = tuple(d for g in groups for d in g.duplicates)
        lit_rules, pat_rules = _index(rules)
        lit_dups, pat_dups = _index(dups)
        return cls(
            rules,
            dups,
            tuple(t for g in groups for t in g.ties),
            tuple(s for g in groups for s in g.synthesize),
            ignore,
            lit_rules,
            pat_rules,
            lit_dups,
            pat_dups,
        )

    def rules_for(self, name: str) -> list[tuple[Rule, dict[str, int]]]:
        """Every rule whose source pattern matches `name`, with the placeholder values."""
        return _hits(name, self._literal_rules, self._patterned_rules)

    def duplicates_for(self, name: str) -> list[tuple[Duplicate, dict[str, int]]]:
        return _hits(name, self._literal_dups, self._patterned_dups)

    def ignore_reason(self, name: str) -> str | None:
        return next((i.reason for i in self.ignore if i.pattern.match(name) is not None), None)


def _index(items: tuple) -> tuple[dict[str, tuple], tuple]:
    literal: dict[str, tuple] = {}
    for item in items:
        if not item.src.placeholders:
            literal[item.src.text] = (*literal.get(item.src.text, ()), item)
    return literal, tuple(i for i in items if i.src.placeholders)


def _hits(name: str, literal: dict[str, tuple], patterned: tuple) -> list:
    hits = [(item, {}) for item in literal.get(name, ())]
    return hits + [(p, v) for p in patterned if (v := p.src.match(name)) is not None]
