"""Deterministic parity inputs: padded rows of different lengths with special tokens."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

SEED = 1234


@dataclass
class Batch:
    """Token ids, attention mask and (optionally) token types, shaped [rows, len], or
    [rows, choices, len] for multiple choice."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray | None

    def as_dict(self) -> dict[str, np.ndarray]:
        out = {"input_ids": self.input_ids, "attention_mask": self.attention_mask}
        if self.token_type_ids is not None:
            out["token_type_ids"] = self.token_type_ids
        return out

    def feed(self, feeds: dict[str, str]) -> dict[str, np.ndarray]:
        """The reference model's inputs under its own names (a table's `reference.feeds`: model
        input → batch field). A field the batch lacks is fed as zeros (token types of a model
        that has one type)."""
        fields = self.as_dict()
        return {
            model_input: fields[field] if field in fields else np.zeros_like(self.input_ids)
            for model_input, field in feeds.items()
        }

    def flat_mask(self) -> np.ndarray:
        """Non-padding positions as a boolean [sequences, len] array."""
        return self.attention_mask.reshape(-1, self.attention_mask.shape[-1]).astype(bool)


@dataclass
class ParityInputs:
    """The rows to run, in batches: the maximum-length row(s) alone, and the short rows grouped
    by length (`_by_length`), so no row is padded to many times its length (which would multiply
    the work for nothing); at least one batch still pads rows of different lengths."""

    batches: list[Batch]
    rows: list[str] = field(default_factory=list)  # what each row is, for the report

    def describe(self) -> dict[str, Any]:
        return {
            "batches": [list(b.input_ids.shape) for b in self.batches],
            "seed": SEED,
            "rows": self.rows,
            "lengths": [int(n) for b in self.batches for n in b.flat_mask().sum(axis=1)],
            "token_type_ids": self.batches[0].token_type_ids is not None,
        }


def _special_ids(dims: dict[str, Any]) -> tuple[int, int, int]:
    pad = int(dims.get("pad_token_id") or 0)
    bos = dims.get("bos_token_id")
    eos = dims.get("eos_token_id")
    # BERT-style configs name no bos/eos: [CLS] and [SEP] of the standard vocab when it is large
    # enough (mappings/tokenizers/families.yaml, parity_ids), otherwise two distinct non-pad ids.
    if bos is None or eos is None:
        from ..tokenizers.families import load_families

        vocab = int(dims["vocab_size"])
        cls, sep = load_families().parity_ids
        bos, eos = (cls, sep) if vocab > max(cls, sep) else (pad + 1, pad + 2)
    return pad, int(bos), int(eos)


def _texts(texts: list[str], tokenizer_dir: Path, max_len: int) -> list[list[int]]:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    except Exception as exc:  # the tokenizers library raises bare Exception for bad files
        raise InputError(
            f"--text needs the source tokenizer, which did not load ({exc})", tokenizer_dir
        ) from None
    return [tokenizer(t, truncation=True, max_length=max_len)["input_ids"] for t in texts]


def _batch(rows: list[list[int]], pad: int, with_types: bool, choices: int) -> Batch:
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad, dtype=np.int32)
    mask = np.zeros((len(rows), width), dtype=np.int32)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    types = None
    if with_types:  # second half of each row is segment B
        types = np.zeros_like(ids)
        for i, r in enumerate(rows):
            types[i, len(r) // 2 : len(r)] = 1
    if choices > 1:
        ids, mask = ids.reshape(-1, choices, width), mask.reshape(-1, choices, width)
        types = None if types is None else types.reshape(-1, choices, width)
    return Batch(ids, mask, types)


def make_inputs(
    dims: dict[str, Any],
    position_offset: int,
    input_shape: str = "sequence",
    token_types: bool = True,
    texts: tuple[str, ...] = (),
    tokenizer_dir: Path | None = None,
) -> ParityInputs:
    """A maximum-length row, then short rows (quarter length, short, minimal) and real texts.

    Rows carry bos/eos and a separator pair in the middle, as RoBERTa sentence pairs do. For
    choice-shaped input (a head fact, `reference.heads.<head>.input_shape: choices`), rows are
    paired into two choices per example. Token types are fed when the model takes them
    (`token_types`, from the table's feeds) and has more than one.
    """
    rng = np.random.default_rng(SEED)
    pad, bos, eos = _special_ids(dims)
    vocab = int(dims["vocab_size"])
    max_len = int(dims["max_position_embeddings"]) - position_offset
    low = min(max(pad, bos, eos) + 1, vocab - 1)

    def synthetic(n: int) -> list[int]:
        body = rng.integers(low, vocab, size=n - 2).tolist()
        if n >= 8:
            body[n // 2 - 1 : n // 2 + 1] = [eos, eos]
        return [bos, *body, eos]

    choices = 2 if input_shape == "choices" else 1
    long_rows = [synthetic(max_len) for _ in range(choices)]
    long_names = ["maximum length"] * choices
    short_rows = [synthetic(n) for n in (max(4, min(max_len, max_len // 4)), min(max_len, 9), 3)]
    short_names = ["quarter length", "short", "minimal: bos, one token, eos"]
    if texts:
        if tokenizer_dir is None:
            raise InputError("--text needs tokenizer files next to the source weights")
        short_rows += _texts(list(texts), tokenizer_dir, max_len)
        short_names += [f"text: {t[:40]}" for t in texts]
    if len(short_rows) % choices:
        short_rows.append(short_rows[-1])
        short_names.append("repeat (multiple choice pairs rows)")
    with_types = token_types and int(dims.get("type_vocab_size") or 1) > 1
    examples = [short_rows[i : i + choices] for i in range(0, len(short_rows), choices)]
    batches = [long_rows] + [sum(group, []) for group in _by_length(examples)]
    return ParityInputs(
        [_batch(rows, pad, with_types, choices) for rows in batches], long_names + short_names
    )


def _by_length(examples: list[list[list[int]]]) -> list[list[list[list[int]]]]:
    """Consecutive examples (each one row, or its choices) in batches: an example shorter than a
    quarter of its batch's first one starts a new batch, so padding stays below 4× a row."""
    groups: list[list[list[list[int]]]] = []
    for example in examples:
        length = max(len(r) for r in example)
        if not groups or 4 * length < max(len(r) for r in groups[-1][0]):
            groups.append([])
        groups[-1].append(example)
    return groups
