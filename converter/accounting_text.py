"""The accounting as text: every unexpected, missing and mismatched tensor, one line each, with
the closest names on the other side ("did you mean …")."""

from __future__ import annotations

import difflib

from .plan import Plan, Shape


def _closest(name: str, pool: list[str]) -> tuple[str, ...]:
    return tuple(difflib.get_close_matches(name, pool, n=3, cutoff=0.5))


def fmt_shape(shape: Shape | None) -> str:
    return "?" if shape is None else "[" + ", ".join(map(str, shape)) + "]"


def accounting_table(plan: Plan) -> str:
    """A human table of every unexpected, missing and mismatched tensor, with the closest names
    on the other side (computed here, only when there is something to show)."""
    lines = []
    unplaced_sources = [u.name for u in plan.unexpected]
    for u in plan.unexpected:
        closest = _closest(u.name, plan.expected_sources)
        near = f"  did you mean: {', '.join(closest)}" if closest else ""
        lines.append(f"  unexpected  {u.name} {fmt_shape(u.shape)}{near}")
    for u in plan.missing:
        closest = _closest(u.expected_source, unplaced_sources)
        near = f"  closest unplaced source: {', '.join(closest)}" if closest else ""
        lines.append(f"  missing     {u.name} (from source '{u.expected_source}'){near}")
    for m in plan.mismatched:
        lines.append(
            f"  mismatched  {m.src} → {m.dst}: got {fmt_shape(m.got)} ({m.note}), "
            f"expected {fmt_shape(m.expected)}"
        )
    return "\n".join(lines)
