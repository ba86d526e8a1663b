"""The doctor's diagnosis as text: what loads, what needs which repair, what is lost, and why.

Keys that load as they are are counted, not listed; keys sharing the same repairs are listed
under one heading, so a DDP-wrapped checkpoint reads as one finding, not two hundred lines.
"""

from __future__ import annotations

from collections import defaultdict

from ..plan.fates import SourceFate, TargetFate, label
from .diagnose import Diagnosis, KeyFate

EXAMPLES_PER_REPAIR = 3


def _shape(shape: list[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _repaired(fates: list[KeyFate], reasons: dict[str, str]) -> list[str]:
    groups: dict[tuple[str, ...], list[KeyFate]] = defaultdict(list)
    for fate in fates:
        groups[tuple(fate.repairs)].append(fate)
    lines = []
    for repairs, members in groups.items():
        lines.append(
            f"  {label(SourceFate.REPAIRED)} {len(members)} key(s) by {' + '.join(repairs)}"
        )
        lines += [f"                ({r}: {reasons[r]})" for r in repairs if r in reasons]
        for fate in members[:EXAMPLES_PER_REPAIR]:
            ops = f" [{', '.join(fate.ops)}]" if fate.ops else ""
            lines.append(f"                {fate.key} → {fate.target}{ops}")
        if len(members) > EXAMPLES_PER_REPAIR:
            lines.append(f"                … and {len(members) - EXAMPLES_PER_REPAIR} more")
    return lines


def render(diagnosis: Diagnosis) -> list[str]:
    by_fate: dict[SourceFate, list[KeyFate]] = defaultdict(list)
    for fate in diagnosis.keys:
        by_fate[fate.fate].append(fate)
    lines = [
        f"checkpoint: {diagnosis.checkpoint} ({len(diagnosis.keys)} tensors)",
        f"model:      {diagnosis.class_name}",
    ]
    lines += [f"choice:     {k} = {v}" for k, v in diagnosis.choices.items()]
    lines += [f"note:       {n}" for n in diagnosis.notes]
    as_is = by_fate[SourceFate.AS_IS]
    lines.append(f"  {label(SourceFate.AS_IS)} {len(as_is)} key(s) load unchanged")
    lines += _repaired(by_fate[SourceFate.REPAIRED], diagnosis.repairs_used)
    for fate in (SourceFate.TIED, SourceFate.IGNORED):
        lines += [f"  {label(fate)} {f.key}: {f.meaning}" for f in by_fate[fate]]
    lines += [
        f"  {label(f.fate)} {f.key} {_shape(f.shape)} → {f.target}: {f.meaning}"
        for f in by_fate[SourceFate.MISMATCHED]
    ]
    for fate in by_fate[SourceFate.UNEXPECTED]:
        near = f"  ({fate.meaning})" if fate.meaning else ""
        lines.append(
            f"  {label(fate.fate)} {fate.key} {_shape(fate.shape)}: nothing in the model{near}"
        )
    for fate in by_fate[SourceFate.DROPPED]:
        why = f": {fate.meaning}" if fate.meaning else ""
        lines.append(f"  {label(fate.fate)} {fate.key} {_shape(fate.shape)}{why}")
    if diagnosis.missing:
        where = ", ".join(f"{g} ({n})" for g, n in diagnosis.missing_by_layer.items())
        lines.append(
            f"  {label(TargetFate.MISSING)} {len(diagnosis.missing)} parameter(s) would stay "
            f"randomly initialised: {where}"
        )
        lines += [f"                {k}" for k in diagnosis.missing]
        if diagnosis.missing_head_only:
            lines.append("                (only the head: --drop-head initialises it explicitly)")
    lines += [
        f"  {label(TargetFate.SYNTHESIZED)} {k} ({fill}): {why}"
        for k, (fill, why) in diagnosis.synthesized.items()
    ]
    if diagnosis.reinitialised:
        lines.append(
            f"  re-initialised (--drop-head) {len(diagnosis.reinitialised)} head parameter(s): "
            + ", ".join(diagnosis.reinitialised)
        )
    lines.append(f"verdict: {diagnosis.verdict}")
    return lines
