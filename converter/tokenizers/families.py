"""Tokenizer families as data: mappings/tokenizers/families.yaml, validated like every table.

A family is what a Hugging Face tokenizer class needs (model kind, special tokens, how one or two
segments are packed, the slow files it reads); `keras_hub` says which keras-hub tokenizer layer
makes which family from which asset files; `releases` which files a checkpoint's own release
ships beside it. Nothing here imports a framework.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import MappingTableError
from ..tables import load_yaml, tables_dir
from ..tables.schemas import TOKENIZER_FAMILIES

FAMILIES_FILE = Path("tokenizers") / "families.yaml"


@dataclass(frozen=True)
class PieceLayout:
    """How a SentencePiece model's pieces are numbered in the model's embeddings: `head` tokens
    first, then the model's pieces from id `pieces_from` on, then `tail` tokens."""

    head: tuple[str, ...]
    pieces_from: int
    tail: tuple[str, ...]


@dataclass(frozen=True)
class Family:
    name: str
    model: str  # byte-level-bpe, wordpiece, sentencepiece, fastbpe
    tokenizer_class: str
    slow_files: tuple[str, ...]
    specials: dict[str, str]  # HF role → token
    single: str  # TemplateProcessing templates
    pair: str
    config: dict[str, Any]  # fixed tokenizer_config.json entries
    lstrip: frozenset[str]  # roles whose token swallows the space before it
    layout: PieceLayout | None  # SentencePiece numbering, when not the model's own
    class_models: frozenset[str]  # SentencePiece model types the class holds (empty: any)


@dataclass(frozen=True)
class KerasTokenizer:
    class_name: str
    family: str
    assets: dict[str, str]  # keras-hub asset name → HF slow-file name
    rules: str
    settings: dict[str, tuple[str, Any]]  # keras-hub config key → (option, default)
    preprocessor: str


@dataclass(frozen=True)
class Release:
    name: str
    files: dict[str, str]  # file beside the checkpoint → the name the plan holds it by
    families: tuple[str, ...]
    rules: str


@dataclass(frozen=True)
class Families:
    families: dict[str, Family]
    keras_hub: dict[str, KerasTokenizer]
    releases: tuple[Release, ...]
    parity_ids: tuple[int, int]  # bos, eos

    def family(self, name: str) -> Family:
        return self.families[name]

    def keras_assets(self) -> set[str]:
        return {a for k in self.keras_hub.values() for a in k.assets}

    def keras_for_assets(self, names: set[str]) -> KerasTokenizer | None:
        """The keras-hub layer whose assets these are, when only one family uses them (a bare
        assets directory, with no layer config to say which class it was)."""
        fits = {k.family: k for k in self.keras_hub.values() if names and names <= set(k.assets)}
        return next(iter(fits.values())) if len(fits) == 1 else None


def _family(name: str, entry: dict[str, Any]) -> Family:
    layout = entry.get("vocabulary")
    return Family(
        name=name,
        model=entry["model"],
        tokenizer_class=entry["tokenizer_class"],
        slow_files=tuple(entry["slow_files"]),
        specials=dict(entry["specials"]),
        single=entry["template"]["single"],
        pair=entry["template"]["pair"],
        config=dict(entry.get("config") or {}),
        lstrip=frozenset(entry.get("lstrip") or ()),
        layout=PieceLayout(
            tuple(layout["head"]), int(layout["pieces_from"]), tuple(layout.get("tail") or ())
        )
        if layout
        else None,
        class_models=frozenset(entry.get("class_models") or ()),
    )


def parse_families(path: Path, data: dict[str, Any]) -> Families:
    families = {name: _family(name, entry) for name, entry in data["families"].items()}
    keras = {
        cls: KerasTokenizer(
            cls,
            e["family"],
            dict(e["assets"]),
            e["rules"],
            {k: (s["option"], s["default"]) for k, s in (e.get("settings") or {}).items()},
            e["preprocessor"],
        )
        for cls, e in data["keras_hub"].items()
    }
    releases = tuple(
        Release(
            r["name"],
            dict(r["files"]),
            tuple([r["family"]] if isinstance(r["family"], str) else r["family"]),
            r["rules"],
        )
        for r in data["releases"]
    )
    named = [k.family for k in keras.values()] + [f for r in releases for f in r.families]
    unknown = sorted(set(named) - set(families))
    if unknown:
        raise MappingTableError(f"{path}: unknown tokenizer families: {', '.join(unknown)}")
    ids = data["parity_ids"]
    return Families(families, keras, releases, (int(ids["bos"]), int(ids["eos"])))


@cache
def load_families(path: Path | None = None) -> Families:
    path = path or tables_dir() / FAMILIES_FILE
    return parse_families(path, load_yaml(path, TOKENIZER_FAMILIES))
