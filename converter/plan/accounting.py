"""The accounting engine: place every source tensor and every target parameter in one bucket.

Source tensors are mapped (to exactly one target), duplicates (a stored copy of another source
tensor, checked equal when written), ignored (by a table rule with a reason) or unexpected.
Target parameters are produced, tied, synthesized (with a reason) or missing. Shapes are checked
against the shapes the config implies, after the rule's declared ops. Each bucket's class
carries its word of the shared vocabulary (`fates.py`) as `fate`. The plan is pure data:
`enforce` refuses an unclean one, `accounting_text` shows it, the writer carries it out.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import InputError, MappingTableError
from ..readers.base import Source, SourceTensor
from ..tables import Pattern, ShapeSpec, Table
from ..tables.ops import Op, OpShapeError, chain_shape
from ..tables.reference import head_facts
from .fates import SourceFate, TargetFate

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Mapped:
    fate: ClassVar[SourceFate] = SourceFate.MAPPED  # its target's fate is TargetFate.PRODUCED
    src: str
    dst: str
    ops: tuple[Op, ...]
    src_shape: Shape
    shape: Shape
    dtype: str

    def detail(self) -> dict[str, Any]:
        return {"target": self.dst, "ops": [o.describe() for o in self.ops]}


@dataclass(frozen=True)
class DuplicateCopy:
    fate: ClassVar[SourceFate] = SourceFate.DUPLICATE
    src: str
    same_as: str

    def detail(self) -> dict[str, Any]:
        return {"same_as": self.same_as}


@dataclass(frozen=True)
class Ignored:
    fate: ClassVar[SourceFate] = SourceFate.IGNORED
    src: str
    shape: Shape
    reason: str

    def detail(self) -> dict[str, Any]:
        return {"reason": self.reason}


@dataclass(frozen=True)
class Unexpected:
    """A source tensor no rule places."""

    fate: ClassVar[SourceFate] = SourceFate.UNEXPECTED
    src: str
    shape: Shape

    def detail(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class Mismatch:
    fate: ClassVar[SourceFate] = SourceFate.MISMATCHED
    src: str
    dst: str
    got: Shape | None
    expected: Shape
    note: str
    conflicts: tuple[tuple[str, Any, int], ...] = ()  # (config key, config value, weight value)

    def detail(self) -> dict[str, Any]:
        got = None if self.got is None else list(self.got)
        return {"target": self.dst, "got": got, "expected": list(self.expected), "note": self.note}


SourcePlacement = Mapped | DuplicateCopy | Ignored | Unexpected | Mismatch


@dataclass(frozen=True)
class TiedTarget:
    fate: ClassVar[TargetFate] = TargetFate.TIED
    dst: str
    same_as: str


@dataclass(frozen=True)
class SynthesizedTarget:
    fate: ClassVar[TargetFate] = TargetFate.SYNTHESIZED
    dst: str
    shape: Shape
    fill: str
    reason: str


@dataclass(frozen=True)
class MissingTarget:
    """A target nothing produces, with the source name its rule expects."""

    fate: ClassVar[TargetFate] = TargetFate.MISSING
    dst: str
    expected_source: str


@dataclass
class Plan:
    table: Table
    head: str
    dims: dict[str, Any]
    mapped: list[Mapped] = field(default_factory=list)
    duplicates: list[DuplicateCopy] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    tied: list[TiedTarget] = field(default_factory=list)
    synthesized: list[SynthesizedTarget] = field(default_factory=list)
    unexpected: list[Unexpected] = field(default_factory=list)
    missing: list[MissingTarget] = field(default_factory=list)
    mismatched: list[Mismatch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    expected_sources: list[str] = field(default_factory=list)  # every source name the rules want

    @property
    def class_name(self) -> str:
        return self.table.class_name(self.head)

    @property
    def input_shape(self) -> str:
        """`sequence` ([batch, length]) or `choices` ([batch, choices, length], multiple choice):
        the head's fact from its table's `reference:` block, for both models' inputs."""
        return head_facts(self.table.reference, self.head).input_shape

    @property
    def clean(self) -> bool:
        return not (self.unexpected or self.missing or self.mismatched)

    def placements(self) -> dict[str, SourcePlacement]:
        """Every source tensor's name → its bucket (whose `fate` says which)."""
        buckets = (self.mapped, self.duplicates, self.ignored, self.unexpected, self.mismatched)
        return {p.src: p for bucket in buckets for p in bucket}

    def target_names(self) -> list[str]:
        """Every parameter the PyTorch class has, by how this plan accounts for it."""
        names = [m.dst for m in self.mapped] + [t.dst for t in self.tied]
        return sorted(names + [s.dst for s in self.synthesized])


def _eval_shape(spec: ShapeSpec, dims: dict[str, Any], config_path: Any) -> Shape:
    shape = []
    for d in spec:
        if isinstance(d, int):
            shape.append(d)
        elif d in dims and isinstance(dims[d], int):
            shape.append(dims[d])
        else:
            raise InputError(
                f"config has no integer '{d}'",
                config_path,
                "add it to config.json (it sets a weight shape)",
            )
    return tuple(shape)


def _expand(pattern: Pattern, table: Table, dims: dict[str, Any]) -> list[tuple[str, dict]]:
    names = pattern.placeholders
    ranges = [range(int(dims.get(table.placeholders[n], 0))) for n in names]
    out = []
    for combo in itertools.product(*ranges):
        values = dict(zip(names, combo, strict=True))
        out.append((pattern.fill(values), values))
    return out


def _conflicts(spec: ShapeSpec, got: Shape, dims: dict[str, Any]) -> tuple:
    """Which config keys would have to change for `got` to match `spec` (same rank only)."""
    if len(spec) != len(got):
        return ()
    out = []
    for d, g in zip(spec, got, strict=True):
        if isinstance(d, str) and dims.get(d) != g:
            out.append((d, dims.get(d), g))
        elif isinstance(d, int) and d != g:
            return ()
    return tuple(out)


def _one(name: str, hits: list, table: Table):
    if len(hits) > 1:
        raise MappingTableError(
            f"mappings/{table.name}.yaml: source '{name}' matches {len(hits)} rules"
        )
    return hits[0] if hits else (None, None)


def _mapped_or_mismatched(
    tensor: SourceTensor, rule, values: dict[str, int], table: Table, head: str, dims, config_path
) -> Mapped | Mismatch:
    """A tensor a rule places: mapped when its shape after the rule's ops is the one the config
    implies, else a mismatch saying which config keys would have to change."""
    dst = table.target_name(head, rule.dst.fill(values))
    expected = _eval_shape(rule.shape, dims, config_path)
    try:
        got = chain_shape(rule.ops, tensor.shape)
    except OpShapeError as exc:
        return Mismatch(tensor.name, dst, None, expected, str(exc))
    if got != expected:
        note = f"source {list(tensor.shape)}" + "".join(f" → {o.describe()}" for o in rule.ops)
        conflicts = _conflicts(rule.shape, got, dims)
        return Mismatch(tensor.name, dst, got, expected, note, conflicts)
    return Mapped(tensor.name, dst, rule.ops, tensor.shape, got, tensor.dtype.str)


def _place(
    tensor: SourceTensor, compiled, table: Table, head: str, dims, present: set[str], config_path
) -> SourcePlacement:
    """One source tensor's bucket: by a rule (unless its layer index is beyond the config's
    count), else as a stored duplicate, else by an ignore rule, else unexpected."""
    rule, values = _one(tensor.name, compiled.rules_for(tensor.name), table)
    if rule is not None:
        in_range = all(v < int(dims.get(table.placeholders[k], 0)) for k, v in values.items())
        if not in_range:
            return Unexpected(tensor.name, tensor.shape)
        return _mapped_or_mismatched(tensor, rule, values, table, head, dims, config_path)
    dup, values = _one(tensor.name, compiled.duplicates_for(tensor.name), table)
    if dup is not None and dup.same_as.fill(values) in present:
        return DuplicateCopy(tensor.name, dup.same_as.fill(values))
    reason = compiled.ignore_reason(tensor.name)
    if reason is not None:
        return Ignored(tensor.name, tensor.shape, reason)
    return Unexpected(tensor.name, tensor.shape)


def _targets(plan: Plan, compiled, config_path) -> dict[str, str]:
    """Ties and synthesized targets into the plan; returns every rule target → the source name
    it should come from."""
    table, head, dims = plan.table, plan.head, plan.dims
    expected_src: dict[str, str] = {}
    for rule in compiled.rules:
        for dst, values in _expand(rule.dst, table, dims):
            expected_src[table.target_name(head, dst)] = rule.src.fill(values)
    for tie in compiled.ties:
        for dst, values in _expand(tie.dst, table, dims):
            same_as = table.target_name(head, tie.same_as.fill(values))
            plan.tied.append(TiedTarget(table.target_name(head, dst), same_as))
    for syn in compiled.synthesize:
        shape = _eval_shape(syn.shape, dims, config_path)
        for dst, _ in _expand(syn.dst, table, dims):
            target = table.target_name(head, dst)
            plan.synthesized.append(SynthesizedTarget(target, shape, syn.fill, syn.reason))
    return expected_src


def plan_head(source: Source, table: Table, head: str, dims: dict[str, Any]) -> Plan:
    """Account for every tensor under one head's rules (compiled once with the table). Never
    raises for accounting problems."""
    plan = Plan(table=table, head=head, dims=dims)
    compiled = table.compiled(head, dims)
    present = {t.name for t in source.tensors}
    buckets: dict[type, list] = {
        Mapped: plan.mapped,
        Mismatch: plan.mismatched,
        DuplicateCopy: plan.duplicates,
        Ignored: plan.ignored,
        Unexpected: plan.unexpected,
    }
    for tensor in source.tensors:
        placement = _place(tensor, compiled, table, head, dims, present, source.config_path)
        buckets[type(placement)].append(placement)
    expected_src = _targets(plan, compiled, source.config_path)
    produced = {p.dst for p in plan.mapped} | {p.dst for p in plan.mismatched}
    plan.expected_sources = sorted(set(expected_src.values()))
    plan.missing = [
        MissingTarget(dst, src) for dst, src in sorted(expected_src.items()) if dst not in produced
    ]
    _hold_ties(plan, expected_src)
    plan.mapped.sort(key=lambda m: m.dst)
    return plan


def _hold_ties(plan: Plan, expected_src: dict[str, str]) -> None:
    """A tie is a claim, not a label: the tied parameter is written once, as its partner, so
    the partner must be a parameter the plan fills (mapped, synthesized, or tied to one that
    is); else the tied one is left unfilled: missing. (A table cannot both tie a parameter and
    produce it from a source tensor; a stored copy of the partner is a checked duplicate.)"""
    partners = {t.dst: t.same_as for t in plan.tied}
    filled = {m.dst for m in plan.mapped} | {s.dst for s in plan.synthesized}
    for _ in partners:  # ties of ties: each round settles one more link
        filled |= {dst for dst, partner in partners.items() if partner in filled}
    plan.missing += [
        MissingTarget(t.dst, expected_src.get(t.same_as, t.same_as))
        for t in plan.tied
        if t.same_as not in filled
    ]
