"""The source side of tokenizer parity: each source's own tokenizer, rebuilt as an encoder.

An encoder maps (text, optional second segment) to the ids the source model would be fed,
special tokens included. keras-hub sources use keras-hub's tokenizer and its text-classifier
preprocessor's packing; HF sources the source directory's own tokenizer; TF1 sources a reference
WordPiece with the casing decided for them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import InputError
from ..tf_import import tensorflow
from .sources import KERAS_VOCAB_FILES, TokenizerPlan
from .wordpiece import WordPiece

Encoder = Callable[[str, str | None], list[int]]
KERAS_CLASSES = {"roberta-bpe": "RobertaTokenizer", "bert-wordpiece": "BertTokenizer"}
PACK_LENGTH = 4096
PREPROCESSOR_SUFFIX = "TextClassifierPreprocessor"  # RobertaTokenizer → RobertaTextClassifier…


def _keras_hub(plan: TokenizerPlan, max_length: int) -> tuple[Encoder, str]:
    tensorflow()  # Keras 3's backend, imported quietly first
    import keras
    import keras_hub

    hf_to_keras = {hf: keras_name for keras_name, (_, hf) in KERAS_VOCAB_FILES.items()}
    if plan.keras_layer is not None:
        tokenizer = keras.saving.deserialize_keras_object(plan.keras_layer)
    else:
        tokenizer = getattr(keras_hub.models, KERAS_CLASSES[plan.family])()
    with tempfile.TemporaryDirectory(prefix="tf2pt-keras-assets-") as assets:
        for hf_name, data in plan.files.items():
            (Path(assets) / hf_to_keras[hf_name]).write_bytes(data)
        tokenizer.load_assets(assets)
    class_name = type(tokenizer).__name__
    preprocessor_class = getattr(
        keras_hub.models, class_name.removesuffix("Tokenizer") + PREPROCESSOR_SUFFIX, None
    )
    if preprocessor_class is None:
        raise InputError(f"no keras-hub preprocessor for {class_name}", plan.origin)
    # Longer than any corpus row: tokenization and packing are compared, not truncation.
    preprocessor = preprocessor_class(tokenizer, sequence_length=PACK_LENGTH)

    def encode(text: str, pair: str | None = None) -> list[int]:
        packed = preprocessor(x=text if pair is None else (text, pair))
        ids = packed["token_ids"].numpy().reshape(-1)
        mask = packed["padding_mask"].numpy().reshape(-1).astype(bool)
        return [int(i) for i in ids[mask]]

    return encode, f"keras-hub {class_name} + {preprocessor_class.__name__}"


def _source_hf(plan: TokenizerPlan, max_length: int) -> tuple[Encoder, str]:
    tokenizer = load_hf(Path(plan.origin))
    return hf_encoder(tokenizer), f"the source's HF tokenizer ({type(tokenizer).__name__})"


def _wordpiece(plan: TokenizerPlan, max_length: int) -> tuple[Encoder, str]:
    lines = plan.files["vocab.txt"].decode("utf-8").splitlines()
    vocab = {token: i for i, token in enumerate(lines)}
    lowercase = bool(plan.options["do_lower_case"])
    reference = WordPiece(vocab, lowercase=lowercase)
    casing = "lowercased, accents stripped" if lowercase else "cased"
    return reference.encode, f"reference WordPiece (google-research/bert rules, {casing})"


REFERENCES = {"keras-hub": _keras_hub, "hf": _source_hf, "wordpiece": _wordpiece}


def reference_encoder(plan: TokenizerPlan, max_length: int) -> tuple[Encoder, str]:
    """The source-side encoder for `plan` and a description of it."""
    return REFERENCES[plan.reference](plan, max_length)


def load_hf(directory: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(directory))
    except Exception as exc:  # noqa: BLE001 - tokenizers/transformers raise many kinds
        raise InputError(
            f"the tokenizer does not load with AutoTokenizer ({type(exc).__name__}: {exc})",
            directory,
        ) from None


def hf_encoder(tokenizer) -> Encoder:
    def encode(text: str, pair: str | None = None) -> list[int]:
        return list(tokenizer(text, pair)["input_ids"])

    return encode
