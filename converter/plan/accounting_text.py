"""The accounting as text: every unexpected, missing and mismatched tensor, one line each, with
the closest names on the other side ("did you mean …")."""

from __future__ import annotations

import difflib

from .accounting import Plan, Shape, SourcePlacement
from .fates import SourceFate, TargetFate, label


def _closest(name: str, pool: list[str]) -> tuple[str, ...]:
    return tuple(difflib.get_close_matches(name, pool, n=3, cutoff=0.5))


def fmt_shape(shape: Shape | None) -> str:
    return "?" if shape is None else "[" + ", ".join(map(str, shape)) + "]"


def accounting_table(plan: Plan) -> str:
    """A human table of every unexpected, missing and mismatched tensor, with the closest names
    on the other side (computed here, only when there is something to show)."""
    lines = []
    unplaced_sources = [u.src for u in plan.unexpected]
    for u in plan.unexpected:
        closest = _closest(u.src, plan.expected_sources)
        near = f"  did you mean: {', '.join(closest)}" if closest else ""
        lines.append(f"  {label(SourceFate.UNEXPECTED)} {u.src} {fmt_shape(u.shape)}{near}")
    for m in plan.missing:
        closest = _closest(m.expected_source, unplaced_sources)
        near = f"  closest unplaced source: {', '.join(closest)}" if closest else ""
        lines.append(
            f"  {label(TargetFate.MISSING)} {m.dst} (from source '{m.expected_source}'){near}"
        )
    for m in plan.mismatched:
        lines.append(
            f"  {label(SourceFate.MISMATCHED)} {m.src} → {m.dst}: got {fmt_shape(m.got)} "
            f"({m.note}), expected {fmt_shape(m.expected)}"
        )
    return "\n".join(lines)


PLACEMENT_TEXT = {
    SourceFate.MAPPED: lambda p: f"→ {p.dst}" + "".join(f" [{o.describe()}]" for o in p.ops),
    SourceFate.DUPLICATE: lambda p: f"= copy of {p.same_as} (checked equal when converting)",
    SourceFate.IGNORED: lambda p: f"ignored: {p.reason}",
    SourceFate.UNEXPECTED: lambda p: "UNEXPECTED",
    SourceFate.MISMATCHED: lambda p: f"SHAPE MISMATCH → {p.dst}",
}


def placement_text(placement: SourcePlacement) -> str:
    """What becomes of one source tensor, for `tf2pt inspect`."""
    return PLACEMENT_TEXT[placement.fate](placement)
