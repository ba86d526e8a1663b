"""conversion_report.json: the full accounting of one conversion, as plain data."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import __version__
from .plan import Plan
from .readers import Source

REPORT_FILE = "conversion_report.json"


def _source_rows(source: Source, plan: Plan) -> list[dict[str, Any]]:
    mapped = {m.src: m for m in plan.mapped}
    dups = {d.src: d for d in plan.duplicates}
    ignored = {i.src: i for i in plan.ignored}
    rows = []
    for t in source.tensors:
        row: dict[str, Any] = {"name": t.name, "shape": list(t.shape), "dtype": t.dtype.name}
        if t.name in mapped:
            row |= {
                "fate": "mapped",
                "target": mapped[t.name].dst,
                "ops": [o.describe() for o in mapped[t.name].ops],
            }
        elif t.name in dups:
            row |= {"fate": "duplicate", "same_as": dups[t.name].same_as, "checked": "equal"}
        else:
            row |= {"fate": "ignored", "reason": ignored[t.name].reason}
        rows.append(row)
    return sorted(rows, key=lambda r: r["name"])


def _target_rows(plan: Plan) -> list[dict[str, Any]]:
    rows = (
        [
            {"name": m.dst, "shape": list(m.shape), "how": "produced", "from": m.src}
            for m in plan.mapped
        ]
        + [{"name": t.dst, "how": "tied", "same_as": t.same_as} for t in plan.tied]
        + [
            {
                "name": s.dst,
                "shape": list(s.shape),
                "how": "synthesized",
                "fill": s.fill,
                "reason": s.reason,
            }
            for s in plan.synthesized
        ]
    )
    return sorted(rows, key=lambda r: r["name"])


def build_report(
    source: Source, plan: Plan, files: list[str], config_notes: list[str], warnings: list[str]
) -> dict[str, Any]:
    """Every source tensor with its fate, every target parameter with how it is made."""
    target_rows = _target_rows(plan)
    return {
        "tool": {"name": "tf2pt", "version": __version__},
        "source": {
            "path": str(source.path),
            "layout": source.layout,
            "name_or_path": source.config.get("_name_or_path"),
            "weight_files": [p.name for p in source.weight_files],
            "tokenizer_files": [p.name for p in source.tokenizer_files],
        },
        "table": plan.table.name,
        "architecture": plan.table.architecture,
        "head": plan.head,
        "class": plan.class_name,
        "counts": {
            "source_tensors": len(source.tensors),
            "mapped": len(plan.mapped),
            "duplicates": len(plan.duplicates),
            "ignored": len(plan.ignored),
            "unexpected": len(plan.unexpected),
            "target_parameters": len(target_rows),
            "produced": len(plan.mapped),
            "tied": len(plan.tied),
            "synthesized": len(plan.synthesized),
            "missing": len(plan.missing),
            "parameters": int(
                sum(int(np.prod(m.shape)) for m in plan.mapped)
                + sum(int(np.prod(s.shape)) for s in plan.synthesized)
            ),
        },
        "source_tensors": _source_rows(source, plan),
        "target_parameters": target_rows,
        "notes": plan.notes + config_notes,
        "warnings": warnings,
        "output_files": sorted(files),
    }
