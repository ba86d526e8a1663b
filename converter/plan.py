"""The accounting engine: place every source tensor and every target parameter in one bucket.

Source tensors are mapped (to exactly one target), duplicates (a stored copy of another source
tensor, checked equal when written), ignored (by a table rule with a reason) or unexpected.
Target parameters are produced, tied, synthesized (with a reason) or missing. Shapes are checked
against the shapes the config implies, after the rule's declared ops. The plan is pure data; the
writer carries it out.
"""

from __future__ import annotations

import difflib
import itertools
from dataclasses import dataclass, field
from typing import Any

from .errors import AccountingError, ConfigConflictError, InputError, MappingTableError, UsageError
from .mapping import Pattern, ShapeSpec, Table
from .ops import Op, OpShapeError, chain_shape
from .readers.base import Source, SourceTensor

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Mapped:
    src: str
    dst: str
    ops: tuple[Op, ...]
    src_shape: Shape
    shape: Shape
    dtype: str


@dataclass(frozen=True)
class DuplicateCopy:
    src: str
    same_as: str


@dataclass(frozen=True)
class Ignored:
    src: str
    shape: Shape
    reason: str


@dataclass(frozen=True)
class TiedTarget:
    dst: str
    same_as: str


@dataclass(frozen=True)
class SynthesizedTarget:
    dst: str
    shape: Shape
    fill: str
    reason: str


@dataclass(frozen=True)
class Unplaced:
    """An unexpected source tensor, or a missing target with the source it should come from."""

    name: str
    shape: Shape | None
    expected_source: str = ""


@dataclass(frozen=True)
class Mismatch:
    src: str
    dst: str
    got: Shape | None
    expected: Shape
    note: str
    conflicts: tuple[tuple[str, Any, int], ...] = ()  # (config key, config value, weight value)


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
    unexpected: list[Unplaced] = field(default_factory=list)
    missing: list[Unplaced] = field(default_factory=list)
    mismatched: list[Mismatch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    expected_sources: list[str] = field(default_factory=list)  # every source name the rules want

    @property
    def class_name(self) -> str:
        return self.table.class_name(self.head)

    @property
    def clean(self) -> bool:
        return not (self.unexpected or self.missing or self.mismatched)

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


def _closest(name: str, pool: list[str]) -> tuple[str, ...]:
    return tuple(difflib.get_close_matches(name, pool, n=3, cutoff=0.5))


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


def _match_one(name: str, patterns: list[tuple[Pattern, Any]], table: Table):
    hits = [(obj, v) for p, obj in patterns if (v := p.match(name)) is not None]
    if len(hits) > 1:
        raise MappingTableError(
            f"mappings/{table.name}.yaml: source '{name}' matches {len(hits)} rules"
        )
    return hits[0] if hits else (None, None)


def plan_head(source: Source, table: Table, head: str, dims: dict[str, Any]) -> Plan:
    """Account for every tensor under one head's rules. Never raises for accounting problems."""
    plan = Plan(table=table, head=head, dims=dims)
    groups = [g for g in table.head_groups(head) if g.applies(dims)]
    rules = [(r.src, r) for g in groups for r in g.rules]
    dups = [(d.src, d) for g in groups for d in g.duplicates]
    present = {t.name for t in source.tensors}
    produced: set[str] = set()
    unexpected: list[SourceTensor] = []

    for tensor in source.tensors:
        rule, values = _match_one(tensor.name, rules, table)
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
        dup, values = _match_one(tensor.name, dups, table)
        if dup is not None and dup.same_as.fill(values) in present:
            plan.duplicates.append(DuplicateCopy(tensor.name, dup.same_as.fill(values)))
            continue
        reason = next(
            (i.reason for i in table.ignore if i.pattern.match(tensor.name) is not None), None
        )
        if reason is not None:
            plan.ignored.append(Ignored(tensor.name, tensor.shape, reason))
            continue
        unexpected.append(tensor)

    expected_src: dict[str, str] = {}  # target → source name it should come from
    for group in groups:
        for rule in group.rules:
            for dst, values in _expand(rule.dst, table, dims):
                expected_src[table.target_name(head, dst)] = rule.src.fill(values)
        for tie in group.ties:
            for dst, values in _expand(tie.dst, table, dims):
                plan.tied.append(
                    TiedTarget(
                        table.target_name(head, dst),
                        table.target_name(head, tie.same_as.fill(values)),
                    )
                )
        for syn in group.synthesize:
            shape = _eval_shape(syn.shape, dims, source.config_path)
            for dst, _ in _expand(syn.dst, table, dims):
                plan.synthesized.append(
                    SynthesizedTarget(table.target_name(head, dst), shape, syn.fill, syn.reason)
                )

    plan.expected_sources = sorted(set(expected_src.values()))
    plan.unexpected = [Unplaced(t.name, t.shape) for t in unexpected]
    plan.missing = [
        Unplaced(dst, None, src) for dst, src in sorted(expected_src.items()) if dst not in produced
    ]
    plan.mapped.sort(key=lambda m: m.dst)
    return plan


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


def _fmt_shape(shape: Shape | None) -> str:
    return "?" if shape is None else "[" + ", ".join(map(str, shape)) + "]"


def accounting_table(plan: Plan) -> str:
    """A human table of every unexpected, missing and mismatched tensor, with the closest names
    on the other side (computed here, only when there is something to show)."""
    lines = []
    unplaced_sources = [u.name for u in plan.unexpected]
    for u in plan.unexpected:
        closest = _closest(u.name, plan.expected_sources)
        near = f"  did you mean: {', '.join(closest)}" if closest else ""
        lines.append(f"  unexpected  {u.name} {_fmt_shape(u.shape)}{near}")
    for u in plan.missing:
        closest = _closest(u.expected_source, unplaced_sources)
        near = f"  closest unplaced source: {', '.join(closest)}" if closest else ""
        lines.append(f"  missing     {u.name} (from source '{u.expected_source}'){near}")
    for m in plan.mismatched:
        lines.append(
            f"  mismatched  {m.src} → {m.dst}: got {_fmt_shape(m.got)} ({m.note}), "
            f"expected {_fmt_shape(m.expected)}"
        )
    return "\n".join(lines)


def check_layer_counts(source: Source, plan: Plan) -> None:
    """The config's layer count must equal the number of layers stored in the weights."""
    table = plan.table
    rules = [r for g in table.head_groups(plan.head) if g.applies(plan.dims) for r in g.rules]
    for name, key in table.placeholders.items():
        seen = {
            v[name]
            for t in source.tensors
            for r in rules
            if name in r.src.placeholders and (v := r.src.match(t.name)) is not None
        }
        stored = max(seen) + 1 if seen else 0
        if stored and stored != int(plan.dims.get(key, 0)):
            raise ConfigConflictError(
                f"config says {key}={plan.dims.get(key)} but the weights hold {stored} layers",
                source.config_path or source.path,
                f'set "{key}": {stored} in config.json',
            )


def enforce(source: Source, plan: Plan) -> None:
    """Raise unless every tensor is accounted for with the right shape."""
    check_layer_counts(source, plan)
    if plan.unexpected or plan.missing:
        parts = []
        if plan.unexpected:
            first = plan.unexpected[0]
            parts.append(
                f"{len(plan.unexpected)} unexpected source tensor(s), e.g. '{first.name}' "
                f"{_fmt_shape(first.shape)}"
            )
        if plan.missing:
            parts.append(
                f"{len(plan.missing)} missing target parameter(s), e.g. '{plan.missing[0].name}'"
            )
        raise AccountingError(
            f"cannot account for every weight as {plan.class_name}: " + "; ".join(parts),
            source.path,
            "see the table above; pass --head if the head was mis-detected",
            details=accounting_table(plan),
        )
    if plan.mismatched:
        explained = [m for m in plan.mismatched if m.conflicts]
        if len(explained) == len(plan.mismatched):
            key, config_value, weight_value = explained[0].conflicts[0]
            hint = (
                f"pass --num-labels {weight_value} to trust the weights (id2label is rewritten)"
                if key == "num_labels"
                else f'fix config.json ("{key}": {weight_value}) to match the weights'
            )
            raise ConfigConflictError(
                f"config says {key}={config_value} but {explained[0].dst} implies "
                f"{key}={weight_value}",
                source.config_path or source.path,
                hint,
                details=accounting_table(plan),
            )
        raise AccountingError(
            f"{len(plan.mismatched)} tensor(s) do not have the shape {plan.class_name} needs",
            source.path,
            "see the table above",
            details=accounting_table(plan),
        )
