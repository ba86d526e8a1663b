"""The source's config in transformers' terms, and notes on what the table translated."""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..provenance.assumptions import (
    NO_REASON,
    SETTING,
    Assumption,
    Kind,
    declared,
    defaults_applied,
    over,
)
from ..readers.base import Source
from ..tables import SourceConfigEntry, Table


def _lookup(config: dict[str, Any], dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _from_weights(entry: SourceConfigEntry, source: Source) -> int | None:
    if entry.count is not None:
        indices = [v for t in source.tensors if (v := entry.count.match(t.name)) is not None]
        return 1 + max(max(v.values(), default=0) for v in indices) if indices else None
    for pattern in (entry.tensor, entry.or_tensor):
        if pattern is None:
            continue
        name = pattern.fill(dict.fromkeys(pattern.placeholders, 0))
        shape = next((t.shape for t in source.tensors if t.name == name), None)
        if shape is not None and len(shape) > entry.axis:
            return max(1, shape[entry.axis] // entry.divide) if entry.divide else shape[entry.axis]
    return None


def _translate(entry: SourceConfigEntry, value: Any) -> Any:
    hashable = isinstance(value, str | int | float | bool)
    return entry.values.get(value, value) if hashable else value


def source_hf_config(source: Source, table: Table, head: str | None = None) -> dict[str, Any]:
    """The source's config in transformers' terms.

    HF layouts already use transformers' keys. A foreign layout (keras-hub) declares in its table
    where each value lives; values its own config lacks (a bare `.weights.h5` has none) are read
    from the weights' shapes, and the rules' shape checks then hold the two against each other.
    A layout whose config already uses HF keys (bert_config.json) keeps it and translates only
    the declared entries (its "gelu" is transformers' gelu_new). A requested `head` may say
    where its own values are (the other model of a two-model checkpoint).
    """
    entries = table.source_config_for(head)
    if not entries:
        return dict(source.config)
    config: dict[str, Any] = dict(source.config) if table.keep_source_config else {}
    config["model_type"] = table.model_type
    for hf_key, entry in entries.items():
        value = _lookup(source.config, entry.key) if entry.key else None
        if value is None:
            value = _from_weights(entry, source)
        if value is not None:
            value = _translate(entry, value)
            config[hf_key] = value + entry.add if entry.add else value
        elif entry.required:
            raise InputError(f"the source records no {hf_key}: {entry.note}", source.path)
    return config


def _translations(
    source: Source, table: Table, config: dict[str, Any], head: str | None
) -> list[Assumption]:
    """Values the table translated from the source's terms (a TF1 "gelu" is transformers'
    gelu_new; keras-hub's position count lacks RoBERTa's 2 offset rows) or guessed off a shape
    (heads = hidden_size / 64), with the table's reasons."""
    out = []
    for hf_key, entry in table.source_config_for(head).items():
        if hf_key not in config:
            continue
        reason = entry.why or NO_REASON
        before = _lookup(source.config, entry.key) if entry.key else None
        if before is None and entry.divide:
            out.append(Assumption(hf_key, config[hf_key], Kind.GUESSED, reason))
            continue
        if before is None:
            before = _from_weights(entry, source)
        if before is not None and (entry.add or _translate(entry, before) != before):
            out.append(Assumption(hf_key, config[hf_key], Kind.TRANSLATED, reason, before))
    return out


def _from_config_file(source: Source) -> list[Assumption]:
    """The values a --config file gives that the source's own config did not (or gave
    otherwise): declared by the user."""
    if source.own_config is None:
        return []
    changed = {
        k: v
        for k, v in source.config.items()
        if k not in source.own_config or source.own_config[k] != v
    }
    return declared(changed, f"in --config {source.config_path}")


def config_provenance(
    source: Source,
    table: Table,
    config: dict[str, Any],
    settings: dict[str, Any],
    head: str | None = None,
) -> list[Assumption]:
    """Every value of the output config that does not come from the source itself: declared in
    a --config file, translated or guessed by the table, a table default, or set with --set
    (which replaces what the table would have assumed for its key). `config` is the source
    config in transformers' terms with the --set values."""
    assumed = _translations(source, table, config, head) + defaults_applied(table, config)
    return _from_config_file(source) + over(assumed, declared(settings, SETTING))


def source_notes(source: Source, table: Table) -> list[str]:
    """Notes on source settings the converted model does not reproduce (see the table)."""
    notes = []
    for note in table.source_notes:
        value = _lookup(source.config, note.key)
        if value is not None and value not in note.unless:
            notes.append(note.note.format(value=value))
    return notes
