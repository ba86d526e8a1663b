"""The source-side tokenizer for parity, rebuilt by the source's own rules: keras-hub's layer and
preprocessor as `fit`/`predict` run them (a `tf.data` pipeline, keras-hub's TensorFlow graph),
`sentencepiece`'s processor with the release's numbering, a reference WordPiece or fastBPE, or
the source's own Hugging Face files. Each encodes every corpus row with its special tokens."""

from __future__ import annotations

import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..tf_import import tensorflow
from .families import load_families
from .fastbpe import FastBpe, read_dictionary
from .sources import TokenizerPlan
from .wordpiece import WordPiece

Rows = list[tuple[str, str | None]]
PACK_LENGTH = 4096  # longer than any corpus row: tokenization and packing are compared
SPACE_MARK = "\u2581"


@dataclass
class Reference:
    ids: list[list[int]]  # one list per row
    name: str
    evidence: list[str] = field(default_factory=list)


def _keras_tokenizer(plan: TokenizerPlan):
    tensorflow()  # Keras 3's backend, imported quietly first
    import keras
    import keras_hub

    keras_class = load_families().keras_hub[plan.keras_class]
    if plan.keras_layer is not None:
        tokenizer = keras.saving.deserialize_keras_object(plan.keras_layer)
    else:
        tokenizer = getattr(keras_hub.models, keras_class.class_name)()
    hf_to_keras = {hf: kh for kh, hf in keras_class.assets.items()}
    with tempfile.TemporaryDirectory(prefix="tf2pt-keras-assets-") as assets:
        for hf_name, data in plan.files.items():
            (Path(assets) / hf_to_keras[hf_name]).write_bytes(data)
        tokenizer.load_assets(assets)
    preprocessor = getattr(keras_hub.models, keras_class.preprocessor)
    return tokenizer, preprocessor(tokenizer, sequence_length=PACK_LENGTH)


def _packed(outputs) -> list[list[int]]:
    ids = np.asarray(outputs["token_ids"])
    mask = np.asarray(outputs["padding_mask"]).astype(bool)
    return [[int(i) for i in row[keep]] for row, keep in zip(ids, mask, strict=True)]


def _by_kind(rows: Rows, encode) -> list[list[int]]:
    """Single rows in one batch, pairs in another (`encode(firsts, seconds or None)`), back in
    the rows' order."""
    singles = [t for t, p in rows if p is None]
    pairs = [(t, p) for t, p in rows if p is not None]
    single_ids = iter(encode(singles, None) if singles else [])
    pair_ids = iter(encode(*map(list, zip(*pairs, strict=True))) if pairs else [])
    return [next(single_ids) if p is None else next(pair_ids) for _, p in rows]


def _keras_hub(plan: TokenizerPlan, rows: Rows) -> Reference:
    """keras-hub's tokenizer in a tf.data map (its graph path, as fit/predict feed text), every
    segment in one batch; then the preprocessor's own packer adds the special tokens."""
    tf = tensorflow()

    tokenizer, preprocessor = _keras_tokenizer(plan)
    preprocessor.build(None)  # makes its packer
    texts = list(dict.fromkeys(t for row in rows for t in row if t is not None))
    data = tf.data.Dataset.from_tensor_slices(texts).batch(len(texts))
    tokens = dict(zip(texts, next(iter(data.map(lambda x: tokenizer(x)))).to_list(), strict=True))

    def graph(firsts, seconds):
        segments = [firsts] if seconds is None else [firsts, seconds]
        token_ids, _ = preprocessor.packer(
            tuple(tf.ragged.constant([tokens[t] for t in s], dtype="int32") for s in segments)
        )
        return _packed(
            {"token_ids": token_ids, "padding_mask": token_ids != tokenizer.pad_token_id}
        )

    def eager(firsts, seconds):  # a direct call
        return _packed(preprocessor(x=firsts if seconds is None else (firsts, seconds)))

    ids = _by_kind(rows, graph)
    name = (
        f"keras-hub {type(tokenizer).__name__} + {type(preprocessor).__name__} "
        "(as fit/predict run it)"
    )
    evidence = []
    eager_ids = _by_kind(rows, eager)
    differing = [i for i, (a, b) in enumerate(zip(ids, eager_ids, strict=True)) if a != b]
    if differing:
        evidence.append(
            f"keras-hub's eager (Python) path, which direct calls take, gives other ids on "
            f"{len(differing)} of {len(rows)} rows (#{', #'.join(map(str, differing[:8]))}); the "
            "written tokenizer follows the graph path that fit, predict and tf.data take"
        )
    return Reference(ids, name, evidence)


def _google_bert(plan: TokenizerPlan, rows: Rows) -> Reference:
    lines = plan.files["vocab.txt"].decode("utf-8").splitlines()
    vocab = {token: i for i, token in enumerate(lines)}
    lowercase = bool(plan.options["do_lower_case"])
    reference = WordPiece(vocab, lowercase=lowercase)
    casing = "lowercased, accents stripped" if lowercase else "cased"
    name = f"reference WordPiece (google-research/bert rules, {casing})"
    return Reference([reference.encode(t, p) for t, p in rows], name)


def _processor(model: bytes):
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_proto=model)


def _albert_text(text: str, lowercase: bool) -> str:
    """google-research/albert's preprocess_text (remove_space, keep_accents=False)."""
    out = " ".join(text.strip().split()).replace("``", '"').replace("''", '"')
    out = "".join(c for c in unicodedata.normalize("NFKD", out) if not unicodedata.combining(c))
    return out.lower() if lowercase else out


def _albert_pieces(sp, text: str) -> list[str]:
    """google-research/albert's encode_pieces: a piece ending in a digit and a comma is encoded
    again without the comma, which follows alone."""
    pieces = []
    for piece in sp.encode(text, out_type=str):
        if len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit():
            again = sp.encode(piece[:-1].replace(SPACE_MARK, ""), out_type=str)
            if piece[0] != SPACE_MARK and again and again[0][0] == SPACE_MARK:
                again = again[1:] if len(again[0]) == 1 else [again[0][1:], *again[1:]]
            pieces += [*again, piece[-1]]
        else:
            pieces.append(piece)
    return pieces


def _albert(plan: TokenizerPlan, rows: Rows) -> Reference:
    sp = _processor(plan.files["spiece.model"])
    lowercase = bool(plan.options.get("do_lower_case"))

    def encode(text: str) -> list[int]:
        return [sp.piece_to_id(p) for p in _albert_pieces(sp, _albert_text(text, lowercase))]

    cls, sep = sp.piece_to_id("[CLS]"), sp.piece_to_id("[SEP]")
    ids = [[cls, *encode(t), sep] + ([] if p is None else [*encode(p), sep]) for t, p in rows]
    name = f"sentencepiece with google-research/albert's rules (lowercase={lowercase})"
    return Reference(ids, name)


def _fairseq(plan: TokenizerPlan, rows: Rows) -> Reference:
    sp = _processor(plan.files["sentencepiece.bpe.model"])
    tokens = read_dictionary(plan.files["dict.txt"].decode("utf-8"), plan.origin)
    ids = {t: i for i, t in enumerate(tokens)}  # a token listed twice keeps its last id
    # fairseq's RoBERTa hub writes "<s> … </s>" and looks each symbol up by name (CamemBERT's
    # dict.txt lists <s> and </s> again, so its <s> is 5); an unknown one is the fixed <unk>, 3.
    bos, eos, unk = ids["<s>"], ids["</s>"], 3

    def encode(text: str) -> list[int]:
        return [ids.get(p, unk) for p in sp.encode(text, out_type=str)]

    packed = [
        [bos, *encode(t), eos] + ([] if p is None else [eos, *encode(p), eos]) for t, p in rows
    ]
    return Reference(packed, "sentencepiece pieces numbered by fairseq's dict.txt")


def _fastbpe(plan: TokenizerPlan, rows: Rows) -> Reference:
    reference = FastBpe.from_files(
        plan.files["bpe.codes"].decode("utf-8"),
        plan.files["vocab.txt"].decode("utf-8"),
        plan.origin,
    )
    return Reference(
        [reference.encode(t, p) for t, p in rows], "reference fastBPE (fairseq's rules)"
    )


def _source_hf(plan: TokenizerPlan, rows: Rows) -> Reference:
    tokenizer = load_hf(Path(plan.origin))
    name = f"the source's HF tokenizer ({type(tokenizer).__name__})"
    return Reference(hf_ids(tokenizer, rows), name)


REFERENCES: dict[str, Callable[[TokenizerPlan, Rows], Reference]] = {
    "keras-hub-bpe": _keras_hub,
    "keras-hub-wordpiece": _keras_hub,
    "sentencepiece": _keras_hub,
    "google-research-bert": _google_bert,
    "google-research-albert": _albert,
    "fairseq-sentencepiece": _fairseq,
    "fastbpe": _fastbpe,
    "hf": _source_hf,
}


def reference_ids(plan: TokenizerPlan, rows: Rows) -> Reference:
    """The source's ids for every row, by the source's own rules."""
    return REFERENCES[plan.rules](plan, rows)


def load_hf(directory: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(directory))
    except Exception as exc:  # noqa: BLE001 - tokenizers/transformers raise many kinds
        raise InputError(
            f"the tokenizer does not load with AutoTokenizer ({type(exc).__name__}: {exc})",
            directory,
        ) from None


def hf_ids(tokenizer, rows: Rows) -> list[list[int]]:
    return [list(tokenizer(text, pair)["input_ids"]) for text, pair in rows]
