"""The doctor's diagnosis as text: what loads, what needs which repair, what is lost, and why.

Keys that load as they are are counted, not listed; keys sharing the same repairs are listed
under one heading, so a DDP-wrapped checkpoint reads as one finding, not two hundred lines.
"""

from __future__ import annotations

from collections import defaultdict

from .diagnose import Diagnosis, KeyFate, missing_by_layer

EXAMPLES_PER_REPAIR = 3


def _shape(shape: list[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _repaired(fates: list[KeyFate], reasons: dict[str, str]) -> list[str]:
    groups: dict[tuple[str, ...], list[KeyFate]] = defaultdict(list)
    for fate in fates:
        groups[tuple(fate.repairs)].append(fate)
    lines = []
    for repairs, members in groups.items():
        lines.append(f"  repaired    {len(members)} key(s) by {' + '.join(repairs)}")
        lines += [f"                ({r}: {reasons[r]})" for r in repairs if r in reasons]
        for fate in members[:EXAMPLES_PER_REPAIR]:
            ops = f" [{', '.join(fate.ops)}]" if fate.ops else ""
            lines.append(f"                {fate.key} → {fate.target}{ops}")
        if len(members) > EXAMPLES_PER_REPAIR:
            lines.append(f"                … and {len(members) - EXAMPLES_PER_REPAIR} more")
    return lines


def render(diagnosis: Diagnosis) -> list[str]:
    by_fate: dict[str, list[KeyFate]] = defaultdict(list)
    for fate in diagnosis.keys:
        by_fate[fate.fate].append(fate)
    lines = [
        f"checkpoint: {diagnosis.checkpoint} ({len(diagnosis.keys)} tensors)",
        f"model:      {diagnosis.class_name}",
    ]
    lines += [f"choice:     {k} = {v}" for k, v in diagnosis.choices.items()]
    lines += [f"note:       {n}" for n in diagnosis.notes]
    lines.append(f"  as-is       {len(by_fate['as-is'])} key(s) load unchanged")
    lines += _repaired(by_fate["repaired"], diagnosis.repairs_used)
    lines += [f"  tied        {f.key}: {f.meaning}" for f in by_fate["tied"]]
    lines += [f"  ignored     {f.key}: {f.meaning}" for f in by_fate["ignored"]]
    lines += [
        f"  mismatched  {f.key} {_shape(f.shape)} → {f.target}: {f.meaning}"
        for f in by_fate["mismatched"]
    ]
    for fate in by_fate["unexpected"]:
        near = f"  ({fate.meaning})" if fate.meaning else ""
        lines.append(f"  unexpected  {fate.key} {_shape(fate.shape)}: nothing in the model{near}")
    for fate in by_fate["dropped"]:
        why = f": {fate.meaning}" if fate.meaning else ""
        lines.append(f"  dropped     {fate.key} {_shape(fate.shape)}{why}")
    if diagnosis.missing:
        where = ", ".join(f"{g} ({n})" for g, n in missing_by_layer(diagnosis.missing).items())
        lines.append(
            f"  missing     {len(diagnosis.missing)} parameter(s) would stay randomly "
            f"initialised: {where}"
        )
        lines += [f"                {k}" for k in diagnosis.missing]
        if diagnosis.missing_head_only:
            lines.append("                (only the head: --drop-head initialises it explicitly)")
    lines += [
        f"  synthesized {k} ({fill}): {why}" for k, (fill, why) in diagnosis.synthesized.items()
    ]
    if diagnosis.reinitialised:
        lines.append(
            f"  re-initialised (--drop-head) {len(diagnosis.reinitialised)} head parameter(s): "
            + ", ".join(diagnosis.reinitialised)
        )
    lines.append(f"verdict: {diagnosis.verdict}")
    return lines
