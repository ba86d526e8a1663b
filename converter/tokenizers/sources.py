"""Find a source's tokenizer and decide what to write: copy HF files, or convert keras-hub
assets / a bare `vocab.txt` into HF files. Pure inspection; nothing is written here.

Only files that were checked are used: a keras-hub preset's own `tokenizer.json` is a Keras
layer config, not a Hugging Face tokenizer, and is read as such, never copied.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..readers.base import TOKENIZER_FILE_NAMES
from . import casing

HF_FILES = TOKENIZER_FILE_NAMES  # the files transformers reads a tokenizer from
KERAS_VOCAB_FILES = {  # keras-hub asset file names → family and the HF slow-file name
    "vocabulary.json": ("roberta-bpe", "vocab.json"),
    "merges.txt": ("roberta-bpe", "merges.txt"),
    "vocabulary.txt": ("bert-wordpiece", "vocab.txt"),
}
KERAS_VOCABULARIES = {"vocabulary.json", "vocabulary.txt"}
KERAS_TOKENIZER_CONFIG = "tokenizer.json"  # in a preset: the serialized keras-hub tokenizer layer
PRESET_ASSETS = Path("assets") / "tokenizer"


@dataclass
class TokenizerPlan:
    """What the output's tokenizer is made from, and how the source side is rebuilt for parity."""

    kind: str  # "copy" (HF files), "convert" (HF files written from assets), "none"
    origin: str  # where it came from, for the report
    family: str = ""  # hf_files.FAMILIES key when converting
    files: dict[str, bytes] = field(default_factory=dict)  # HF slow-file name → bytes
    copy: list[Path] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)  # tokenizer_config.json settings
    reference: str = ""  # "keras-hub", "wordpiece", "hf"
    keras_layer: dict[str, Any] | None = None  # the serialized keras-hub tokenizer, if known
    evidence: list[str] = field(default_factory=list)


def is_hf_tokenizer_json(path: Path) -> bool:
    """A Hugging Face tokenizer.json (a `model` and `added_tokens`), not a Keras layer config."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "model" in data and "added_tokens" in data


def _keras_layer(serialized: Any) -> dict[str, Any] | None:
    """The first serialized keras-hub tokenizer layer inside a Keras config, depth first."""
    if isinstance(serialized, dict):
        if str(serialized.get("class_name", "")).endswith("Tokenizer") and "config" in serialized:
            return serialized
        values = serialized.values()
    elif isinstance(serialized, list):
        values = serialized
    else:
        return None
    return next((found for v in values if (found := _keras_layer(v)) is not None), None)


def _keras_options(family: str, layer: dict[str, Any] | None) -> dict[str, Any]:
    config = (layer or {}).get("config", {})
    if family == "roberta-bpe":
        return {"add_prefix_space": bool(config.get("add_prefix_space", False))}
    return {  # keras-hub's WordPieceTokenizer: lowercase does not imply stripping accents
        "do_lower_case": bool(config.get("lowercase", False)),
        "strip_accents": bool(config.get("strip_accents", False)),
        "tokenize_chinese_chars": bool(config.get("split_on_cjk", True)),
    }


def _keras_plan(files: dict[str, bytes], layer: dict[str, Any] | None, origin: str):
    families = {KERAS_VOCAB_FILES[n][0] for n in files}
    if len(families) != 1:
        raise InputError("keras-hub tokenizer assets are incomplete or mixed", origin)
    family = families.pop()
    slow = {KERAS_VOCAB_FILES[n][1]: data for n, data in files.items()}
    if family == "roberta-bpe" and set(slow) != {"vocab.json", "merges.txt"}:
        raise InputError(
            "keras-hub BPE tokenizer assets need both vocabulary.json and merges.txt", origin
        )
    evidence = [
        f"settings from the source's keras-hub {layer['class_name']} config"
        if layer
        else "no keras-hub tokenizer config found: keras-hub's defaults assumed"
    ]
    return TokenizerPlan(
        kind="convert",
        origin=origin,
        family=family,
        files=slow,
        options=_keras_options(family, layer),
        reference="keras-hub",
        keras_layer=layer,
        evidence=evidence,
    )


def _from_keras_zip(path: Path) -> TokenizerPlan | None:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assets = {
            Path(n).name: archive.read(n)
            for n in names
            if n.startswith("assets/") and Path(n).name in KERAS_VOCAB_FILES
        }
        if not assets:
            return None
        layer = _keras_layer(json.loads(archive.read("config.json")))
    return _keras_plan(assets, layer, f"{path.name}: assets of its keras-hub tokenizer")


def _from_keras_dir(directory: Path) -> TokenizerPlan | None:
    """A keras-hub preset (tokenizer.json + assets/tokenizer/) or a bare assets directory."""
    for assets_dir in (directory / PRESET_ASSETS, directory):
        assets = {
            n: (assets_dir / n).read_bytes()
            for n in KERAS_VOCAB_FILES
            if (assets_dir / n).is_file()
        }
        if KERAS_VOCABULARIES & set(assets):  # merges.txt alone is an HF file too
            layer_file = directory / KERAS_TOKENIZER_CONFIG
            layer = None
            if layer_file.is_file() and not is_hf_tokenizer_json(layer_file):
                layer = _keras_layer(json.loads(layer_file.read_text()))
            return _keras_plan(assets, layer, str(assets_dir))
    return None


def _hf_copy(directory: Path) -> TokenizerPlan | None:
    found = [directory / n for n in HF_FILES if (directory / n).is_file()]
    if (directory / "tokenizer.json").is_file() and not is_hf_tokenizer_json(
        directory / "tokenizer.json"
    ):
        found = [f for f in found if f.name != "tokenizer.json"]  # a Keras layer config
    if [f.name for f in found] in ([], ["vocab.txt"]):  # a bare vocab.txt is converted instead
        return None
    return TokenizerPlan(
        kind="copy", origin=str(directory), copy=found, reference="hf", evidence=["HF files"]
    )


def _from_vocab_txt(directory: Path, tensors: dict[str, Any]) -> TokenizerPlan | None:
    vocab_file = directory / "vocab.txt"
    if not vocab_file.is_file():
        return None
    data = vocab_file.read_bytes()
    decided = casing.decide(directory, tensors, data.decode("utf-8").splitlines())
    return TokenizerPlan(
        kind="convert",
        origin=str(vocab_file),
        family="bert-wordpiece",
        files={"vocab.txt": data},
        options={
            "do_lower_case": decided.lowercase,
            "strip_accents": None,  # google-research/bert: lowercasing also strips accents
            "tokenize_chinese_chars": True,
        },
        reference="wordpiece",
        evidence=[decided.evidence],
    )


def find_tokenizer(where: Path, tensors: dict[str, Any]) -> TokenizerPlan:
    """The tokenizer at `where` (a directory, a .keras file, or a vocab.txt), checked."""
    if where.is_file() and zipfile.is_zipfile(where):
        found = _from_keras_zip(where)
        if found is not None:
            return found
        where = where.parent
    elif where.is_file():
        where = where.parent
    for finder in (_from_keras_dir, _hf_copy):
        found = finder(where)
        if found is not None:
            return found
    found = _from_vocab_txt(where, tensors)
    if found is not None:
        return found
    return TokenizerPlan(kind="none", origin=str(where))
