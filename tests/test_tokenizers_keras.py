"""keras-hub's own tokenizers, reproduced by the written tokenizer.json:

- BytePairTokenizer: its graph-path word split (what fit/predict/tf.data run) against keras-hub's
  own `split_strings_for_bpe` on random strings of the characters it treats specially;
- BertTokenizer (and DistilBERT's, ELECTRA's: the same WordPieceTokenizer) with the real MiniLM
  vocab.txt, saved by keras-hub's save_to_preset: every corpus row, and a sample of every
  Unicode code point, against keras-hub's layer — lowercasing without stripping accents
  (`Ünïcödé`), NFKC case folding (`ß` → `ss`), ASCII-only whitespace.
"""

from __future__ import annotations

import json
import random
import unicodedata

import pytest

from converter.tokenizers.build_bpe import byte_level_bpe, read_merges
from converter.tokenizers.build_wordpiece import read_vocab, wordpiece
from converter.tokenizers.corpus import PAIRS, SINGLES

from .real_weights import minilm_dir
from .tokenizer_helpers import convert_tokenizer, hf5_ids, train_byte_level_bpe

ROWS = len(SINGLES) + len(PAIRS)
# What keras-hub's split treats specially: its four listed spaces, RE2's ASCII-only \s (no \v),
# other Unicode spaces, its `६` mark, contractions, CJK, emoji, a default-ignorable.
ALPHABET = [
    *["ab", "Z", "é", "1", "2", "'", "s", "t", "!", "."],
    *[" "] * 4,
    *"\t\n\r\f\v",
    "re",
    "\u00a0",
    "\u2009",
    "\u202f",
    "\u3000",
    "\u2003",
    "\u0085",
    "中",
    "\u096c",
    "\u200b",
    "😀",
    "\u00a0\u2009\u202f\u3000",
]


def _random_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(ALPHABET, k=rng.randint(0, 14))) for _ in range(count)]


def test_the_written_bpe_split_is_keras_hubs_on_random_text(tmp_path):
    import tensorflow as tf
    from keras_hub.src.tokenizers.byte_pair_tokenizer import split_strings_for_bpe
    from tokenizers import pre_tokenizers

    bpe = train_byte_level_bpe(tmp_path / "bpe")
    vocab = json.loads((bpe / "vocab.json").read_text())
    merges = read_merges((bpe / "merges.txt").read_text())
    tokenizer = byte_level_bpe(vocab, merges, "keras-hub", prefix=False)
    gpt2 = byte_level_bpe(vocab, merges, "gpt2", prefix=False)
    as_bytes = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    texts = _random_texts(3000, seed=11) + list(SINGLES)
    keras = split_strings_for_bpe(tf.constant(texts), None).to_list()
    differ_from_gpt2 = 0
    for text, pieces in zip(texts, keras, strict=True):
        normalized = tokenizer.normalizer.normalize_str(text)
        mine = [p for p, _ in tokenizer.pre_tokenizer.pre_tokenize_str(normalized)]
        expected = [as_bytes.pre_tokenize_str(p.decode("utf-8"))[0][0] for p in pieces]
        assert mine == expected, repr(text)
        differ_from_gpt2 += mine != [p for p, _ in gpt2.pre_tokenizer.pre_tokenize_str(text)]
    assert differ_from_gpt2 > 100  # the split is not GPT-2's, so the test could fail


@pytest.fixture(scope="module")
def keras_wordpiece(tmp_path_factory) -> dict[str, tuple]:
    """keras-hub BERT-family tokenizers with the real MiniLM vocab, saved by keras-hub."""
    import keras_hub

    root = tmp_path_factory.mktemp("kh_wordpiece")
    vocab = str(minilm_dir() / "vocab.txt")
    made = {
        "BertTokenizer cased": keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=False),
        "BertTokenizer lowercase": keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=True),
        "DistilBertTokenizer lowercase, accents stripped": keras_hub.models.DistilBertTokenizer(
            vocabulary=vocab, lowercase=True, strip_accents=True
        ),
        "ElectraTokenizer lowercase": keras_hub.models.ElectraTokenizer(
            vocabulary=vocab, lowercase=True
        ),
    }
    converted = {}
    for i, (name, layer) in enumerate(made.items()):
        preset = root / f"preset{i}"
        layer.save_to_preset(str(preset))
        for style in ("faithful", "canonical"):
            out = root / f"out{i}-{style}"
            converted[name, style] = (out, *convert_tokenizer(preset, out, "bert", style))
    return converted


def test_keras_hub_wordpiece_tokenizers_convert_faithfully_on_every_row(keras_wordpiece):
    for (name, style), (_, outcome, parity) in keras_wordpiece.items():
        if style != "faithful":
            continue
        assert parity.passed and parity.equal == parity.rows == ROWS, (
            name,
            parity.first_difference,
        )
        assert "keras-hub" in parity.reference
        assert outcome.plan.options["strip_accents"] is ("stripped" in name), name


def test_lowercasing_without_stripping_accents_deviates_from_hugging_faces_bert(keras_wordpiece):
    """The canonical BertTokenizer strips accents when it lowercases; keras-hub does not, and
    folds case fully: the rows with accents, ß and Greek differ, named as a chosen deviation."""
    _, outcome, parity = keras_wordpiece["BertTokenizer lowercase", "canonical"]
    rows = {SINGLES[i] if i < len(SINGLES) else "pair" for i in outcome.deviation.row_numbers}
    assert {"Straße, Größe, Ärger über Öl.", "Ελληνικά: Καλημέρα κόσμε."} <= rows
    assert any(r.startswith("Café") for r in rows)
    assert parity.passed and set(parity.differing) == set(outcome.deviation.row_numbers)
    assert "pair" in rows  # "Ünïcödé on the left"


def test_a_tokenizer_with_the_wrong_casing_fails_at_the_first_row_with_a_capital(
    keras_wordpiece, tmp_path
):
    import dataclasses

    from converter.tokenizers import check_tokenizer
    from converter.tokenizers.hf_files import write_hf_tokenizer

    from .tokenizer_helpers import out_dir

    _, outcome, _ = keras_wordpiece["BertTokenizer cased", "faithful"]
    wrong = out_dir(tmp_path / "wrong", "bert")
    plan = dataclasses.replace(
        outcome.plan, options={**outcome.plan.options, "do_lower_case": True}
    )
    write_hf_tokenizer(plan, 512, wrong)
    result = check_tokenizer(outcome, wrong)
    assert not result.passed and result.first_difference["row"] == 0  # "Hello world!"


def test_transformers_5_gives_the_faithful_ids_too(keras_wordpiece):
    from converter.tokenizers.parity import corpus_rows
    from converter.tokenizers.references import hf_ids, load_hf

    faithful = {k: v for k, v in keras_wordpiece.items() if k[1] == "faithful"}
    v5 = hf5_ids([out for out, *_ in faithful.values()])
    for (name, _), (out, _, parity) in faithful.items():
        assert parity.passed
        assert v5[str(out)][1] == hf_ids(load_hf(out), corpus_rows()), name


def test_keras_hub_lowercase_wordpiece_on_a_sample_of_every_code_point(keras_wordpiece):
    """Every 5th assigned code point, inside a word and alone: the written pipeline gives
    keras-hub's ids except on compatibility characters whose NFKC form holds punctuation
    (keras-hub folds case after splitting words, the pipeline before), and characters newer than
    the `tokenizers` library's Unicode tables (its NFKC leaves them as they are)."""
    import tensorflow as tf

    from converter.tokenizers.build_wordpiece import splits_words
    from converter.tokenizers.references import _keras_tokenizer

    _, outcome, _ = keras_wordpiece["BertTokenizer lowercase", "faithful"]
    vocab = read_vocab(outcome.plan.files["vocab.txt"].decode("utf-8"))
    tokenizer = wordpiece(vocab, "keras-hub", outcome.plan.options)
    chars = [
        chr(cp)
        for cp in range(0x20, 0x30000, 5)
        if not 0xD800 <= cp <= 0xDFFF and unicodedata.category(chr(cp)) != "Cn"
    ]
    texts = [f"x{c}y {c}" for c in chars]
    keras_layer, _ = _keras_tokenizer(outcome.plan)
    data = tf.data.Dataset.from_tensor_slices(texts).batch(4096).map(lambda x: keras_layer(x))
    reference = [row for batch in data for row in batch.to_list()]
    mine = [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    differing = [c for c, a, b in zip(chars, reference, mine, strict=True) if a != b]

    def folds_into_a_split(ch: str) -> bool:  # its NFKC form holds a character words end at
        folded = unicodedata.normalize("NFKC", ch)
        return folded != ch and any(splits_words(x) for x in folded)

    from tokenizers import normalizers

    nfkc = normalizers.NFKC()  # the `tokenizers` library's own Unicode tables
    unexplained = [
        c
        for c in differing
        if not folds_into_a_split(c) and nfkc.normalize_str(c) == unicodedata.normalize("NFKC", c)
    ]
    assert len(chars) > 25000 and len(differing) < len(chars) / 100
    assert not unexplained, [f"U+{ord(c):04X}" for c in unexplained[:20]]
