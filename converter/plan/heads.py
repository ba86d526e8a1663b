"""Which head a source is: the requested one, else the one its tensors and config identify."""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from ..readers.base import Source
from ..tables import Table
from .accounting import Plan, plan_head


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
