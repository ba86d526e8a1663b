"""A source read and planned: its table, its config in transformers' terms, and the plan of the
head it is converted as. Everything but the bytes, and what every later stage starts from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..readers import Source, open_source
from ..tables import Table, select_table
from .accounting import Plan, plan_head
from .heads import choose_head
from .source_config import source_hf_config, source_notes, translation_notes


@dataclass
class Analysis:
    """A source with its table and accounting plan."""

    source: Source
    plan: Plan
    config: dict[str, Any]  # the source config in transformers' terms (before table defaults)


def open_with_table(src: str | Path, arch: str | None = None) -> tuple[Source, Table]:
    """The source (tensor list, no data) and the mapping table for its layout and architecture."""
    source = open_source(src)
    names = [t.name for t in source.tensors]
    return source, select_table(source.layout, source.config.get("model_type"), arch, names)


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


def _require_config(source: Source, table: Table) -> None:
    if table.requires_config and source.config_path is None:
        raise InputError(
            f"no {table.requires_config} next to the {source.layout} checkpoint",
            source.path,
            f"{table.description} ships one; copy it next to the checkpoint",
        )


def plan_source(
    source: Source, table: Table, *, head: str | None = None, num_labels: int | None = None
) -> Analysis:
    """Decide the head once, then plan it under the config that head reads.

    A head may say where its own config values are (the generator of an ELECTRA checkpoint):
    when detection picks such a head, its config is read and the head planned again under it."""
    _require_config(source, table)
    config = source_hf_config(source, table, head)
    plan = choose_head(source, table, resolve_dims(config, table, num_labels), head)
    if head is None and table.heads[plan.head].source_config:
        config = source_hf_config(source, table, plan.head)
        notes = plan.notes
        plan = plan_head(source, table, plan.head, resolve_dims(config, table, num_labels))
        plan.notes = notes
    plan.notes += source_notes(source, table)
    plan.notes += translation_notes(source, table, config, plan.head)
    return Analysis(source, plan, config)


def analyse(
    src: str | Path,
    *,
    head: str | None = None,
    arch: str | None = None,
    num_labels: int | None = None,
) -> Analysis:
    """Read `src` and plan it: the table from its layout and architecture, then the head."""
    source, table = open_with_table(src, arch)
    return plan_source(source, table, head=head, num_labels=num_labels)
