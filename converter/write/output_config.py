"""The output config.json: the source config, corrected to describe the converted PyTorch model."""

from __future__ import annotations

from typing import Any

from ..plan.accounting import Plan

DROPPED_KEYS = ("transformers_version", "num_labels")
# The weights' dtype, under the key transformers 4 reads (`torch_dtype`) and the one transformers 5
# reads (`dtype`, which loads the model in it by default).
DTYPE_KEYS = ("torch_dtype", "dtype")
TIE_KEY = "tie_word_embeddings"


def _labels(source_config: dict[str, Any], count: int) -> tuple[dict[str, str], list[str]]:
    """Keep the source's label names when their count matches the weights; else generic ones."""
    names = source_config.get("id2label")
    if isinstance(names, dict) and len(names) == count:
        return {str(k): str(v) for k, v in names.items()}, []
    generic = {str(i): f"LABEL_{i}" for i in range(count)}
    note = (
        []
        if names is None
        else [
            f"id2label had {len(names)} names but the classifier has {count} outputs; "
            f"replaced by LABEL_0..LABEL_{count - 1}"
        ]
    )
    return generic, note


def output_config(
    source_config: dict[str, Any], plan: Plan, dtype: str = "float32"
) -> tuple[dict[str, Any], list[str]]:
    """Returns the config to write and notes on every change made to the source config."""
    table = plan.table
    config = {k: v for k, v in source_config.items() if k not in DROPPED_KEYS}
    notes = []
    if plan.tied and config.get(TIE_KEY) is False:
        # transformers ties the output embeddings to the input ones only when this is true; the
        # source model computes with the tie (the table says so), so the PyTorch one must too.
        config[TIE_KEY] = True
        notes.append(
            f"{TIE_KEY} was false, but the source model projects with its tied weights "
            f"({plan.tied[0].dst} = {plan.tied[0].same_as}); written true"
        )
    stated = {source_config[k] for k in DTYPE_KEYS if source_config.get(k) is not None}
    if stated - {dtype}:
        notes.append(f"the source config said {' / '.join(sorted(stated))}; written as {dtype}")
    config |= dict.fromkeys(DTYPE_KEYS, dtype)
    config["architectures"] = [plan.class_name]
    config["model_type"] = table.model_type
    # Write defaults explicitly: a later transformers with other defaults must build the same model.
    # (Each is listed with its reason among the conversion's assumptions, source_config.py.)
    for key, value in table.config_defaults.items():
        config.setdefault(key, value)
    head = table.heads[plan.head]
    if head.labels_from:
        produced = {m.dst: m.shape for m in plan.mapped}
        id2label, label_notes = _labels(source_config, produced[head.labels_from][0])
        config["id2label"] = id2label
        config["label2id"] = {v: int(k) for k, v in id2label.items()}
        notes += label_notes
    elif "num_labels" in source_config:
        config["num_labels"] = source_config["num_labels"]
    return config, notes
