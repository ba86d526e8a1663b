"""conversion_report.json: the full accounting of one conversion, as plain data."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import __version__
from ..plan.accounting import Plan, SourcePlacement
from ..plan.fates import SourceFate, TargetFate
from ..readers import Source, SourceTensor

REPORT_FILE = "conversion_report.json"


def source_row(tensor: SourceTensor, placement: SourcePlacement) -> dict[str, Any]:
    """One source tensor with its fate and what the fate needs said (target, reason, …)."""
    row = {"name": tensor.name, "shape": list(tensor.shape), "dtype": tensor.dtype.name}
    return row | {"fate": placement.fate} | placement.detail()


def _source_rows(source: Source, plan: Plan) -> list[dict[str, Any]]:
    placements = plan.placements()
    rows = [source_row(t, placements[t.name]) for t in source.tensors]
    for row in rows:
        if row["fate"] is SourceFate.DUPLICATE:
            row["checked"] = "equal"  # the writer compared it with its original
    return sorted(rows, key=lambda r: r["name"])


def _target_rows(plan: Plan) -> list[dict[str, Any]]:
    rows = (
        [
            {"name": m.dst, "shape": list(m.shape), "how": TargetFate.PRODUCED, "from": m.src}
            for m in plan.mapped
        ]
        + [{"name": t.dst, "how": t.fate, "same_as": t.same_as} for t in plan.tied]
        + [
            {
                "name": s.dst,
                "shape": list(s.shape),
                "how": s.fate,
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
