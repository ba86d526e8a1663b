"""Deterministic parity inputs: padded rows of different lengths with special tokens."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

SEED = 1234


@dataclass
class ParityInputs:
    """Token ids, attention mask and (optionally) token types, shaped [rows, len] or
    [rows, choices, len] for multiple choice."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray | None
    rows: list[str] = field(default_factory=list)  # what each row is, for the report

    def as_dict(self) -> dict[str, np.ndarray]:
        out = {"input_ids": self.input_ids, "attention_mask": self.attention_mask}
        if self.token_type_ids is not None:
            out["token_type_ids"] = self.token_type_ids
        return out

    def flat_mask(self) -> np.ndarray:
        """Non-padding positions as a boolean [sequences, len] array."""
        return self.attention_mask.reshape(-1, self.attention_mask.shape[-1]).astype(bool)

    def describe(self) -> dict[str, Any]:
        return {
            "shape": list(self.input_ids.shape),
            "seed": SEED,
            "rows": self.rows,
            "lengths": self.flat_mask().sum(axis=1).tolist(),
            "token_type_ids": self.token_type_ids is not None,
        }


def _special_ids(dims: dict[str, Any]) -> tuple[int, int, int]:
    pad = int(dims.get("pad_token_id") or 0)
    bos = dims.get("bos_token_id")
    eos = dims.get("eos_token_id")
    # BERT-style configs name no bos/eos: [CLS]=101 and [SEP]=102 in the standard vocab when it
    # is large enough, otherwise any two distinct non-pad ids.
    if bos is None or eos is None:
        vocab = int(dims["vocab_size"])
        bos, eos = (101, 102) if vocab > 102 else (pad + 1, pad + 2)
    return pad, int(bos), int(eos)


def _texts(texts: list[str], tokenizer_dir: Path, max_len: int) -> list[list[int]]:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"--text needs the source tokenizer, which did not load ({exc})", tokenizer_dir
        ) from None
    return [tokenizer(t, truncation=True, max_length=max_len)["input_ids"] for t in texts]


def make_inputs(
    dims: dict[str, Any],
    position_offset: int,
    multiple_choice: bool,
    texts: list[str] = (),
    tokenizer_dir: Path | None = None,
) -> ParityInputs:
    """Four synthetic rows (full length, half, short, minimal) plus any real texts."""
    rng = np.random.default_rng(SEED)
    pad, bos, eos = _special_ids(dims)
    vocab = int(dims["vocab_size"])
    max_len = int(dims["max_position_embeddings"]) - position_offset
    low = min(max(pad, bos, eos) + 1, vocab - 1)
    lengths = [max_len, max(4, max_len // 2), min(max_len, 9), 3]
    names = ["maximum length", "half length", "short", "minimal: bos, one token, eos"]
    rows = []
    for n in lengths:
        body = rng.integers(low, vocab, size=n - 2).tolist()
        if n >= 8:  # a sentence pair: separator tokens in the middle, as RoBERTa pairs have
            body[n // 2 - 1 : n // 2 + 1] = [eos, eos]
        rows.append([bos, *body, eos])
    if texts:
        if tokenizer_dir is None:
            raise InputError("--text needs tokenizer files next to the source weights")
        for text, ids in zip(texts, _texts(list(texts), tokenizer_dir, max_len), strict=True):
            rows.append(ids)
            names.append(f"text: {text[:40]}")
    if multiple_choice and len(rows) % 2:
        rows.append(rows[-1])
        names.append("repeat (multiple choice pairs rows)")
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad, dtype=np.int32)
    mask = np.zeros((len(rows), width), dtype=np.int32)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    types = None
    if int(dims.get("type_vocab_size") or 1) > 1:
        types = np.zeros_like(ids)
        for i, r in enumerate(rows):
            types[i, len(r) // 2 : len(r)] = 1
    if multiple_choice:
        ids, mask = ids.reshape(-1, 2, width), mask.reshape(-1, 2, width)
        types = None if types is None else types.reshape(-1, 2, width)
    return ParityInputs(ids, mask, types, names)
