"""Enforcement: a plan that does not account for every weight, with the right shape, stops the
conversion with an error naming the tensors and the fix."""

from __future__ import annotations

from ..errors import AccountingError, ConfigConflictError
from ..readers.base import Source
from .accounting import Plan
from .accounting_text import accounting_table, fmt_shape


def check_layer_counts(source: Source, plan: Plan) -> None:
    """The config's layer count must equal the number of layers stored in the weights."""
    table = plan.table
    rules = table.compiled(plan.head, plan.dims).rules
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


def _head_hint(plan: Plan) -> str:
    """Only heads this table has are offered (a one-head table offers none)."""
    others = [h for h in plan.table.heads if h != plan.head]
    if not others:
        return f"see the table above; {plan.table.description} converts to {plan.class_name} only"
    return f"see the table above; if the head was mis-detected, pass --head {' or '.join(others)}"


def enforce(source: Source, plan: Plan) -> None:
    """Raise unless every tensor is accounted for with the right shape."""
    check_layer_counts(source, plan)
    if plan.unexpected or plan.missing:
        parts = []
        if plan.unexpected:
            first = plan.unexpected[0]
            parts.append(
                f"{len(plan.unexpected)} unexpected source tensor(s), e.g. '{first.src}' "
                f"{fmt_shape(first.shape)}"
            )
        if plan.missing:
            parts.append(
                f"{len(plan.missing)} missing target parameter(s), e.g. '{plan.missing[0].dst}'"
            )
        raise AccountingError(
            f"cannot account for every weight as {plan.class_name}: " + "; ".join(parts),
            source.path,
            _head_hint(plan),
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
