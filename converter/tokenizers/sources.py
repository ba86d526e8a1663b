"""Find a source's tokenizer and decide what to write: copy Hugging Face files, or convert
keras-hub assets or a release's own files (vocab.txt, a SentencePiece model, fastBPE codes) into
Hugging Face files. Pure inspection; nothing is written here.

Which files make which tokenizer is data (mappings/tokenizers/families.yaml). Only files that
were checked are used: a keras-hub preset's own `tokenizer.json` is a Keras layer config, not a
Hugging Face tokenizer, and is read as such, never copied.
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
from .families import KerasTokenizer, Release, load_families

HF_FILES = TOKENIZER_FILE_NAMES  # the files transformers reads a tokenizer from
KERAS_TOKENIZER_CONFIG = "tokenizer.json"  # in a preset: the serialized keras-hub tokenizer layer
PRESET_ASSETS = Path("assets") / "tokenizer"


@dataclass
class TokenizerPlan:
    """What the output's tokenizer is made from, and by which rules the source tokenizes."""

    kind: str  # "copy" (HF files), "convert" (HF files written from other files), "none"
    origin: str  # where it came from, for the report
    family: str = ""  # a family of mappings/tokenizers/families.yaml, when converting
    rules: str = ""  # how the source tokenizes (rules.RULES), which parity reproduces
    files: dict[str, bytes] = field(default_factory=dict)  # HF slow-file name (or dict.txt) → bytes
    copy: list[Path] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)  # tokenizer_config.json settings
    keras_class: str = ""  # the keras-hub tokenizer class, when the source is keras-hub
    keras_layer: dict[str, Any] | None = None  # the serialized keras-hub tokenizer, if known
    evidence: list[str] = field(default_factory=list)
    vocab_size: int | None = None  # the embedding's rows, when known (fairseq pads its dictionary)


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


def _keras_class(names: set[str], layer: dict[str, Any] | None, origin: str) -> KerasTokenizer:
    families = load_families()
    if layer is not None:
        known = families.keras_hub.get(str(layer.get("class_name")))
        if known is None:
            raise InputError(
                f"keras-hub {layer.get('class_name')} tokenizers are not converted (known: "
                f"{', '.join(sorted(families.keras_hub))})",
                origin,
            )
        return known
    known = families.keras_for_assets(names)
    if known is None:
        raise InputError(
            f"keras-hub tokenizer assets {', '.join(sorted(names))} without the layer config "
            "that says which tokenizer they are",
            origin,
            "pass the keras-hub preset directory (with its tokenizer.json) as --tokenizer",
        )
    return known


def _keras_plan(files: dict[str, bytes], layer: dict[str, Any] | None, origin: str):
    keras = _keras_class(set(files), layer, origin)
    missing = sorted(set(keras.assets) - set(files))
    if missing:
        raise InputError(f"keras-hub {keras.class_name} assets lack {', '.join(missing)}", origin)
    config = (layer or {}).get("config", {})
    options = {
        option: config.get(key, default) for key, (option, default) in keras.settings.items()
    }
    evidence = [
        f"settings from the source's keras-hub {keras.class_name} config"
        if layer
        else f"no keras-hub tokenizer config found: {keras.class_name} with keras-hub's defaults"
    ]
    return TokenizerPlan(
        kind="convert",
        origin=origin,
        family=keras.family,
        rules=keras.rules,
        files={keras.assets[n]: data for n, data in files.items() if n in keras.assets},
        options=options,
        keras_class=keras.class_name,
        keras_layer=layer,
        evidence=evidence,
    )


def _keras_vocabularies() -> set[str]:
    """Asset names no Hugging Face tokenizer uses (merges.txt alone is an HF file too)."""
    return load_families().keras_assets() - set(HF_FILES)


def _from_keras_zip(path: Path) -> TokenizerPlan | None:
    known = load_families().keras_assets()
    with zipfile.ZipFile(path) as archive:
        assets = {
            Path(n).name: archive.read(n)
            for n in archive.namelist()
            if n.startswith("assets/") and Path(n).name in known
        }
        if not assets:
            return None
        layer = _keras_layer(json.loads(archive.read("config.json")))
    return _keras_plan(assets, layer, f"{path.name}: assets of its keras-hub tokenizer")


def _from_keras_dir(directory: Path) -> TokenizerPlan | None:
    """A keras-hub preset (tokenizer.json + assets/tokenizer/) or a bare assets directory."""
    known = load_families().keras_assets()
    for assets_dir in (directory / PRESET_ASSETS, directory):
        assets = {n: (assets_dir / n).read_bytes() for n in known if (assets_dir / n).is_file()}
        if _keras_vocabularies() & set(assets):
            layer_file = directory / KERAS_TOKENIZER_CONFIG
            layer = None
            if layer_file.is_file() and not is_hf_tokenizer_json(layer_file):
                layer = _keras_layer(json.loads(layer_file.read_text()))
            return _keras_plan(assets, layer, str(assets_dir))
    return None


def _hf_files(directory: Path) -> list[Path]:
    found = [directory / n for n in HF_FILES if (directory / n).is_file()]
    layer_config = directory / "tokenizer.json"
    if layer_config.is_file() and not is_hf_tokenizer_json(layer_config):
        found = [f for f in found if f.name != "tokenizer.json"]  # a Keras layer config
    return found


def _release(directory: Path) -> Release | None:
    return next(
        (r for r in load_families().releases if all((directory / f).is_file() for f in r.files)),
        None,
    )


def _wordpiece_options(directory: Path, tensors: dict[str, Any], files: dict[str, bytes]):
    vocab = files["vocab.txt"].decode("utf-8").splitlines()
    decided = casing.decide(directory, tensors, vocab)
    options = {
        "do_lower_case": decided.lowercase,
        "strip_accents": None,  # google-research/bert: lowercasing also strips accents
        "tokenize_chinese_chars": True,
    }
    return options, [decided.evidence]


def _spm_options(directory: Path, tensors: dict[str, Any], files: dict[str, bytes]):
    """ALBERT's tokenization.py lowercases when told to; the flag is not saved with the
    checkpoint, so the pieces decide, as a WordPiece vocabulary's do."""
    from .spm_model import read_model

    pieces = [
        p.piece.replace("\u2581", "") for p in read_model(files["spiece.model"], directory).pieces
    ]
    decided = casing.decide(directory, tensors, [p for p in pieces if p], "the SentencePiece model")
    return {"do_lower_case": decided.lowercase, "keep_accents": False}, [decided.evidence]


OPTION_FINDERS = {  # rules → the settings a release's files imply, with the evidence
    "google-research-bert": _wordpiece_options,
    "google-research-albert": _spm_options,
}


def _release_plan(directory: Path, release: Release, tensors: dict[str, Any]) -> TokenizerPlan:
    files = {name: (directory / f).read_bytes() for f, name in release.files.items()}
    options, evidence = {}, []
    if release.rules in OPTION_FINDERS:
        options, evidence = OPTION_FINDERS[release.rules](directory, tensors, files)
    evidence.append(f"the files of a {release.name} release")
    return TokenizerPlan(
        kind="convert",
        origin=", ".join(str(directory / f) for f in release.files),
        family=release.families[0],
        rules=release.rules,
        files=files,
        options=options,
        evidence=evidence,
    )


def _from_directory(directory: Path, tensors: dict[str, Any]) -> TokenizerPlan:
    found = _from_keras_dir(directory)
    if found is not None:
        return found
    hf = _hf_files(directory)
    release = _release(directory)
    if release is not None and {f.name for f in hf} <= set(release.files):
        return _release_plan(directory, release, tensors)
    if hf:
        return TokenizerPlan(
            kind="copy", origin=str(directory), copy=hf, rules="hf", evidence=["HF files"]
        )
    return TokenizerPlan(kind="none", origin=str(directory))


def find_tokenizer(where: Path, tensors: dict[str, Any]) -> TokenizerPlan:
    """The tokenizer at `where` (a directory, a .keras file, or a file in the directory)."""
    if where.is_file() and zipfile.is_zipfile(where):
        found = _from_keras_zip(where)
        if found is not None:
            return found
        where = where.parent
    elif where.is_file():
        where = where.parent
    return _from_directory(where, tensors)
