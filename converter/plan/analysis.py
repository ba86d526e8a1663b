"""A source read and planned: its table, its config in transformers' terms, and the plan of the
head it is converted as. Everything but the bytes, and what every later stage starts from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..provenance import Assumption, Kind, check_settings, use_config_file
from ..readers import Source, open_source
from ..tables import Table, select_table
from ..tables.config_keys import model_keys
from .accounting import Plan, plan_head
from .heads import choose_head
from .source_config import config_provenance, source_hf_config, source_notes


@dataclass
class Analysis:
    """A source with its table and accounting plan."""

    source: Source
    plan: Plan
    config: dict[str, Any]  # the source config in transformers' terms, with --set (no defaults)
    # Each output config value not from the source itself, with where it came from and why.
    assumptions: list[Assumption] = field(default_factory=list)
    # The plan's dims without --set: the source as its own config says, for the TF reference.
    reference_dims: dict[str, Any] = field(default_factory=dict)


def open_with_table(
    src: str | Path, arch: str | None = None, config_file: Path | None = None
) -> tuple[Source, Table]:
    """The source (tensor list, no data), with `config_file` as its config when given, and the
    mapping table for its layout and architecture."""
    source = open_source(src)
    if config_file is not None:
        use_config_file(source, config_file)
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


def _source_config(
    source: Source, table: Table, head: str | None, settings: dict[str, Any]
) -> dict[str, Any]:
    """The source config in transformers' terms, the --set values checked against it."""
    config = source_hf_config(source, table, head)
    check_settings(settings, dict.fromkeys(model_keys(table)) | table.config_defaults | config)
    return config


def plan_source(
    source: Source,
    table: Table,
    *,
    head: str | None = None,
    num_labels: int | None = None,
    settings: dict[str, Any] | None = None,
) -> Analysis:
    """Decide the head once, then plan it under the config that head reads.

    A head may say where its own config values are (the generator of an ELECTRA checkpoint):
    when detection picks such a head, its config is read and the head planned again under it.
    `settings` (--set) are the converted model's: the plan takes them, the TF reference's dims
    (`reference_dims`) do not, so parity tests them."""
    settings = dict(settings or {})
    _require_config(source, table)
    config = _source_config(source, table, head, settings)
    plan = choose_head(source, table, resolve_dims(config | settings, table, num_labels), head)
    if head is None and table.heads[plan.head].source_config:
        config = _source_config(source, table, plan.head, settings)
        notes = plan.notes
        dims = resolve_dims(config | settings, table, num_labels)
        plan = plan_head(source, table, plan.head, dims)
        plan.notes = notes
    plan.notes += source_notes(source, table)
    reference_dims = resolve_dims(
        config | _guesses_replaced(source, table, config, settings, plan.head), table, num_labels
    )
    config |= settings
    assumed = config_provenance(source, table, config, settings, plan.head)
    return Analysis(source, plan, config, assumed, reference_dims)


def _guesses_replaced(
    source: Source, table: Table, config: dict[str, Any], settings: dict[str, Any], head: str
) -> dict[str, Any]:
    """The --set values the TF reference takes too: those replacing a value the table guessed
    off a shape (heads = hidden_size / 64 for a checkpoint without a config). The reference's
    value was only that guess, so the declaration is the one fact there is. Everything else the
    reference keeps as the source (or its producer's code) has it, so parity tests the --set."""
    guessed = {
        a.key for a in config_provenance(source, table, config, {}, head) if a.kind is Kind.GUESSED
    }
    return {k: v for k, v in settings.items() if k in guessed}


def analyse(
    src: str | Path,
    *,
    head: str | None = None,
    arch: str | None = None,
    num_labels: int | None = None,
    config_file: Path | None = None,
    settings: dict[str, Any] | None = None,
) -> Analysis:
    """Read `src` (with `config_file` as its config) and plan it: the table from its layout and
    architecture, then the head; `settings` are --set values."""
    source, table = open_with_table(src, arch, config_file)
    return plan_source(source, table, head=head, num_labels=num_labels, settings=settings)
