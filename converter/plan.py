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

from .errors import InputError, MappingTableError, UsageError
from .fates import SourceFate, TargetFate
from .ops import Op, OpShapeError, chain_shape
from .readers.base import Source, SourceTensor
from .tables import Pattern, ShapeSpec, Table

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
        facts = (self.table.reference.get("heads") or {}).get(self.head) or {}
        return str(facts.get("input_shape", "sequence"))

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


def resolve_dims(config: dict[str, Any], table: Table, num_labels: int | None) -> dict[str, Any]:
    """Config values the shape specs refer to, with the table's defaults and label count."""
    dims = {**table.config_defaults, **config}
    if num_labels is not None:
        dims["num_labels"] = num_labels
    elif isinstance(config.get("id2label"), dict):
        dims["num_labels"] = len(config["id2label"])
    else:
        dims.setdefault("num_labels", 2)
    return dims


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


def plan_head(source: Source, table: Table, head: str, dims: dict[str, Any]) -> Plan:
    """Account for every tensor under one head's rules (compiled once with the table). Never
    raises for accounting problems."""
    plan = Plan(table=table, head=head, dims=dims)
    compiled = table.compiled(head, dims)
    present = {t.name for t in source.tensors}
    produced: set[str] = set()
    unexpected: list[SourceTensor] = []

    for tensor in source.tensors:
        rule, values = _one(tensor.name, compiled.rules_for(tensor.name), table)
        if rule is not None:
            out_of_range = [
                k for k, v in values.items() if v >= int(dims.get(table.placeholders[k], 0))
            ]
            if out_of_range:
                unexpected.append(tensor)
                continue
            dst = table.target_name(head, rule.dst.fill(values))
            expected = _eval_shape(rule.shape, dims, source.config_path)
            try:
                got = chain_shape(rule.ops, tensor.shape)
            except OpShapeError as exc:
                plan.mismatched.append(Mismatch(tensor.name, dst, None, expected, str(exc)))
                produced.add(dst)
                continue
            if got != expected:
                conflicts = _conflicts(rule.shape, got, dims)
                note = f"source {list(tensor.shape)}" + "".join(
                    f" → {o.describe()}" for o in rule.ops
                )
                plan.mismatched.append(Mismatch(tensor.name, dst, got, expected, note, conflicts))
            else:
                plan.mapped.append(
                    Mapped(tensor.name, dst, rule.ops, tensor.shape, got, tensor.dtype.str)
                )
            produced.add(dst)
            continue
        dup, values = _one(tensor.name, compiled.duplicates_for(tensor.name), table)
        if dup is not None and dup.same_as.fill(values) in present:
            plan.duplicates.append(DuplicateCopy(tensor.name, dup.same_as.fill(values)))
            continue
        reason = compiled.ignore_reason(tensor.name)
        if reason is not None:
            plan.ignored.append(Ignored(tensor.name, tensor.shape, reason))
            continue
        unexpected.append(tensor)

    expected_src: dict[str, str] = {}  # target → source name it should come from
    for rule in compiled.rules:
        for dst, values in _expand(rule.dst, table, dims):
            expected_src[table.target_name(head, dst)] = rule.src.fill(values)
    for tie in compiled.ties:
        for dst, values in _expand(tie.dst, table, dims):
            plan.tied.append(
                TiedTarget(
                    table.target_name(head, dst),
                    table.target_name(head, tie.same_as.fill(values)),
                )
            )
    for syn in compiled.synthesize:
        shape = _eval_shape(syn.shape, dims, source.config_path)
        for dst, _ in _expand(syn.dst, table, dims):
            plan.synthesized.append(
                SynthesizedTarget(table.target_name(head, dst), shape, syn.fill, syn.reason)
            )

    plan.expected_sources = sorted(set(expected_src.values()))
    plan.unexpected = [Unexpected(t.name, t.shape) for t in unexpected]
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


def _architecture_head(config: dict[str, Any], table: Table) -> str | None:
    archs = config.get("architectures") or []
    return table.head_for_class(archs[0]) if archs else None


def _when_matches(table: Table, head: str, config: dict[str, Any]) -> bool:
    return all(config.get(k) == v for k, v in table.heads[head].when.items())


def choose_head(source: Source, table: Table, dims: dict[str, Any], requested: str | None) -> Plan:
    """The plan for the requested head, or for the head the source's tensors identify."""
    if requested is not None:
        if requested not in table.heads:
            raise UsageError(
                f"unknown head '{requested}' for {table.architecture}",
                hint=f"choose one of: {', '.join(table.heads)}",
            )
        return plan_head(source, table, requested, dims)
    plans = {h: plan_head(source, table, h, dims) for h in table.heads}
    fits = [h for h, p in plans.items() if not p.unexpected and not p.missing]
    declared = _architecture_head(dims, table)
    if declared in fits:
        return plans[declared]
    if declared is not None and plans[declared].missing and not plans[declared].unexpected:
        # The config names a head whose weights are absent: converting what is there as another
        # head would silently drop it. Report the missing weights instead.
        return plans[declared]
    if len(fits) > 1:
        fits = [h for h in fits if _when_matches(table, h, dims)]
        specific = [h for h in fits if table.heads[h].when]
        fits = specific or fits
        fits = [h for h in fits if table.heads[h].default] or fits
    if len(fits) == 1:
        plan = plans[fits[0]]
        if declared:
            plan.notes.append(
                f"config architectures names {table.class_name(declared)}, but the "
                f"weights are those of {plan.class_name}; converted as the latter"
            )
        return plan
    if len(fits) > 1:
        raise UsageError(
            f"the weights fit several heads: {', '.join(fits)}",
            source.path,
            "choose one with --head",
        )
    # Nothing fits: report against the closest head so the table names what is wrong.
    return min(plans.values(), key=lambda p: (len(p.unexpected) + len(p.missing), p.head))
