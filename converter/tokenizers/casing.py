"""Whether a WordPiece vocabulary is used with lowercasing, decided from evidence.

A TF1 checkpoint does not say how its text was cased, and guessing wrong is silent: a cased
model fed lowercased text (or the reverse) maps every capitalised word to the wrong ids. The
evidence, strongest first: a `do_lower_case` flag written next to the checkpoint, a
`do_lower_case` variable stored in it, and else the vocabulary itself — an uncased vocabulary
holds no uppercase word pieces, a cased one holds thousands.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FLAG = "do_lower_case"
FLAG_FILES = ("tokenizer_config.json", "bert_config.json", "config.json")


@dataclass(frozen=True)
class Casing:
    lowercase: bool
    evidence: str  # one sentence for the report


def _flag_in_files(directory: Path) -> Casing | None:
    for name in FLAG_FILES:
        path = directory / name
        try:
            data = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get(FLAG), bool):
            return Casing(data[FLAG], f"{FLAG}={data[FLAG]} in {name}")
    return None


def _flag_in_checkpoint(tensors: dict[str, Any]) -> Casing | None:
    name = next((n for n in tensors if n.rsplit("/", 1)[-1] == FLAG), None)
    if name is None:
        return None
    value = bool(tensors[name].read(None).reshape(-1)[0])
    return Casing(value, f"the checkpoint variable '{name}' is {value}")


def uppercase_pieces(vocab: list[str]) -> list[str]:
    """Word pieces that lowercasing would change — unreachable in an uncased model — with
    special tokens like [CLS] / [unused0] left out (`ℝ` has no lowercase and does not count)."""
    pieces = (t.removeprefix("##") for t in vocab if not (t.startswith("[") and t.endswith("]")))
    return [p for p in pieces if p.lower() != p]


def from_vocabulary(vocab: list[str], name: str = "vocab.txt") -> Casing:
    upper = uppercase_pieces(vocab)
    if upper:
        examples = ", ".join(upper[:3])
        return Casing(
            False,
            f"no {FLAG} flag found; {name} holds {len(upper)} word pieces with uppercase "
            f"letters (e.g. {examples}), so the model is cased: no lowercasing",
        )
    return Casing(
        True,
        f"no {FLAG} flag found; {name} holds no word piece with an uppercase letter, so the "
        "model is uncased: text is lowercased and accents stripped",
    )


def decide(
    directory: Path, tensors: dict[str, Any], vocab: list[str], name: str = "vocab.txt"
) -> Casing:
    return _flag_in_files(directory) or _flag_in_checkpoint(tensors) or from_vocabulary(vocab, name)
