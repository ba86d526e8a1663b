"""Tokenizer conversion and parity: the output's HF tokenizer gives the source tokenizer's ids.

Sources are made by the real producers: keras-hub's RobertaTokenizer / BertTokenizer (with a
byte-level BPE trained by the `tokenizers` library, and the real all-MiniLM-L6-v2 vocab.txt), and
google-research/bert TF1 checkpoints with a cased and an uncased real vocabulary.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from converter.tokenizers import check_tokenizer, write_tokenizer
from converter.tokenizers.casing import decide
from converter.tokenizers.corpus import PAIRS, SINGLES
from converter.tokenizers.hf_files import write_hf_tokenizer
from converter.tokenizers.parity import compare, corpus_rows
from converter.tokenizers.references import hf_encoder, load_hf
from converter.tokenizers.wordpiece import WordPiece

from .conftest import KERAS_HUB_TINY, randomize_keras_weights, read_json, run_cli
from .real_weights import minilm_dir

BPE_TEXT = [*SINGLES, *(a + " " + b for a, b in PAIRS)] * 2 + [
    "The quick brown fox jumps over the lazy dog while the cat sleeps in the sun. " * 4,
    "Tokenizers split text into pieces; converters must keep every piece the same.",
]


def train_bpe(directory: Path, vocab_size: int = 420) -> Path:
    """A real byte-level BPE (vocab.json + merges.txt), trained by the tokenizers library."""
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe.train_from_iterator(BPE_TEXT, vocab_size=vocab_size, special_tokens=specials)
    directory.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(directory))
    return directory


def minilm_vocab() -> list[str]:
    return (minilm_dir() / "vocab.txt").read_text(encoding="utf-8").splitlines()


def cased_vocab() -> list[str]:
    """MiniLM's (uncased) vocabulary with its [unusedN] slots holding capitalised words, as a
    cased BERT vocabulary holds them next to the lowercase ones."""
    vocab = minilm_vocab()
    words = [t for t in vocab[2000:6000] if t.isalpha() and t.isascii()]
    unused = [i for i, t in enumerate(vocab) if t.startswith("[unused")]
    for i, word in zip(unused, words, strict=False):
        vocab[i] = word.capitalize()
    return vocab


def fake_source(directory: Path) -> SimpleNamespace:
    return SimpleNamespace(path=directory, weight_files=[], tensor_map=lambda: {})


# --- the reference WordPiece and casing evidence (no TensorFlow) --------------------------------


def test_reference_wordpiece_agrees_with_hf_bert_on_the_real_minilm_vocab():
    vocab = minilm_vocab()
    reference = WordPiece({t: i for i, t in enumerate(vocab)}, lowercase=True)
    hf = load_hf(minilm_dir())
    result = compare(reference.encode, hf_encoder(hf), corpus_rows(), "reference", "hf", [])
    assert result.rows == len(SINGLES) + len(PAIRS)
    assert result.passed, result.first_difference


def test_casing_comes_from_a_flag_else_from_the_vocabulary(tmp_path):
    assert decide(tmp_path, {}, minilm_vocab()).lowercase is True
    cased = decide(tmp_path, {}, cased_vocab())
    assert cased.lowercase is False and "uppercase" in cased.evidence
    (tmp_path / "bert_config.json").write_text(json.dumps({"do_lower_case": True}))
    flagged = decide(tmp_path, {}, cased_vocab())
    assert flagged.lowercase is True and "bert_config.json" in flagged.evidence


def _out_dir(path: Path, model_type: str) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": model_type}))
    return path


def test_lowercasing_a_cased_vocabulary_fails_tokenizer_parity(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "vocab.txt").write_text("\n".join(cased_vocab()) + "\n", encoding="utf-8")
    good = _out_dir(tmp_path / "good", "bert")
    outcome = write_tokenizer(fake_source(src), good)
    assert outcome.plan.options["do_lower_case"] is False
    assert check_tokenizer(outcome, good).passed
    wrong = _out_dir(tmp_path / "wrong", "bert")  # the classic mistake: default lowercasing
    plan = outcome.plan
    write_hf_tokenizer(plan.family, plan.files, {**plan.options, "do_lower_case": True}, 512, wrong)
    result = check_tokenizer(outcome, wrong)
    assert not result.passed
    assert result.first_difference["text"] == "Hello world!"  # "Hello" is a cased piece
    assert result.equal < result.rows - 5


# --- keras-hub sources ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_hub_roberta(tmp_path_factory) -> dict[str, Path]:
    """A keras-hub RobertaTextClassifier with its preprocessor and a trained byte-level BPE,
    saved as a preset, a .keras file and a bare .weights.h5; converted once (with verification)."""
    import keras_hub

    root = tmp_path_factory.mktemp("kh_tok")
    bpe = train_bpe(root / "bpe")
    tokenizer = keras_hub.models.RobertaTokenizer(
        vocabulary=str(bpe / "vocab.json"), merges=str(bpe / "merges.txt")
    )
    backbone = keras_hub.models.RobertaBackbone(
        **{**KERAS_HUB_TINY, "vocabulary_size": tokenizer.vocabulary_size()}
    )
    preprocessor = keras_hub.models.RobertaTextClassifierPreprocessor(tokenizer, sequence_length=32)
    model = keras_hub.models.RobertaTextClassifier(
        backbone=backbone, num_classes=2, preprocessor=preprocessor
    )
    randomize_keras_weights(model, 5)
    model.save_to_preset(str(root / "preset"))
    model.save(str(root / "model.keras"))
    model.save_weights(str(root / "model.weights.h5"))
    out = root / "out"
    code, _, err = run_cli(["convert", str(root / "preset"), str(out)])
    assert code == 0, err
    return {"root": root, "out": out}


def test_keras_hub_preset_tokenizer_is_converted_and_proven_on_the_corpus(keras_hub_roberta):
    out = keras_hub_roberta["out"]
    assert "class_name" in read_json(keras_hub_roberta["root"] / "preset" / "tokenizer.json")
    assert {"added_tokens", "model"} <= set(read_json(out / "tokenizer.json"))  # not the Keras one
    for name in ("tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt"):
        assert (out / name).is_file(), name
    tokenizer = read_json(out / "conversion_report.json")["tokenizer"]
    assert tokenizer["settings"] == {"add_prefix_space": False}
    parity = tokenizer["parity"]
    assert parity["passed"] and parity["rows_compared"] == len(SINGLES) + len(PAIRS)
    assert parity["rows_equal"] == parity["rows_compared"]
    assert "Tokenizer parity: PASSED" in (out / "parity_report.md").read_text()


def test_keras_file_and_tokenizer_option_give_the_same_tokenizer_files(keras_hub_roberta, tmp_path):
    root, out = keras_hub_roberta["root"], keras_hub_roberta["out"]
    runs = {
        "keras": [str(root / "model.keras")],
        "weights": [str(root / "model.weights.h5"), "--tokenizer", str(root / "preset")],
    }
    for name, args in runs.items():
        code, _, err = run_cli(["convert", *args, str(tmp_path / name), "--no-verify"])
        assert code == 0, err
        for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
            assert (tmp_path / name / f).read_bytes() == (out / f).read_bytes(), (name, f)


def test_flipped_add_prefix_space_fails_tokenizer_parity(keras_hub_roberta, tmp_path):
    plan_source = fake_source(keras_hub_roberta["root"] / "preset")
    outcome = write_tokenizer(plan_source, _out_dir(tmp_path / "wrong", "roberta"))
    plan = outcome.plan
    write_hf_tokenizer(plan.family, plan.files, {"add_prefix_space": True}, 512, tmp_path / "wrong")
    result = check_tokenizer(outcome, tmp_path / "wrong")
    assert not result.passed and result.first_difference["row"] == 0
    assert "keras-hub RobertaTokenizer" in result.reference


REAL_TEXT = "Café owners in Zürich say the new tram line is a great idea! 🚋"
PIPELINE = (
    "import sys, json; from transformers import pipeline; "
    "print(json.dumps(pipeline('text-classification', model=sys.argv[1])(sys.argv[2], "
    "truncation=True)))"
)


def test_converted_keras_hub_dir_runs_in_a_pipeline_in_transformers_4_and_5(keras_hub_roberta, hf5):
    from transformers import pipeline

    out = keras_hub_roberta["out"]
    # longer than the tiny model's 38 positions: truncation must follow model_max_length
    (v4,) = pipeline("text-classification", model=str(out))(REAL_TEXT, truncation=True)
    result = hf5.run(PIPELINE, out, REAL_TEXT)
    assert result.returncode == 0, result.stderr[-2000:]
    (v5,) = json.loads(result.stdout.strip().splitlines()[-1])
    assert v4["label"] == v5["label"] and v4["score"] == pytest.approx(v5["score"], abs=1e-5)


def _keras_hub_bert(tmp_path: Path, lowercase: bool):
    import keras_hub

    preset = tmp_path / f"preset-{lowercase}"
    keras_hub.models.BertTokenizer(
        vocabulary=str(minilm_dir() / "vocab.txt"), lowercase=lowercase
    ).save_to_preset(str(preset))
    out = _out_dir(tmp_path / f"out-{lowercase}", "bert")
    outcome = write_tokenizer(fake_source(preset), out)
    assert outcome.plan.options["do_lower_case"] is lowercase
    assert outcome.plan.options["strip_accents"] is False  # keras-hub keeps accents
    return check_tokenizer(outcome, out)


def test_keras_hub_bert_tokenizer_divergences_from_hf_wordpiece_are_caught(tmp_path):
    """keras-hub's WordPieceTokenizer differs from BERT's own rules (which HF follows): it keeps
    no-break/em spaces inside words and lowercases by Unicode case folding (ß → ss). No HF
    setting reproduces that, so tokenizer parity must refuse these, naming the first row."""
    cased = _keras_hub_bert(tmp_path, lowercase=False)
    assert "keras-hub BertTokenizer" in cased.reference
    assert not cased.passed and cased.first_difference["text"].startswith("Tab\xa0non-breaking")
    assert cased.equal == cased.rows - 1  # every other row, accents and CJK included, agrees
    uncased = _keras_hub_bert(tmp_path, lowercase=True)
    assert not uncased.passed and uncased.first_difference["text"].startswith("Straße")


def test_verify_rechecks_the_tokenizer_of_an_existing_output(keras_hub_roberta, tmp_path):
    preset = keras_hub_roberta["root"] / "preset"
    out = shutil.copytree(keras_hub_roberta["out"], tmp_path / "out")
    code, _, err = run_cli(["verify", str(preset), str(out)])
    assert code == 0 and "tokenizer parity passed" in err, err
    plan = write_tokenizer(fake_source(preset), _out_dir(tmp_path / "scratch", "roberta")).plan
    write_hf_tokenizer(plan.family, plan.files, {"add_prefix_space": True}, 38, out)
    code, _, err = run_cli(["verify", str(preset), str(out)])
    assert code == 1 and "tokenizer parity failed" in err.strip().splitlines()[-1]


def test_an_apostrophe_opening_a_word_is_a_known_keras_hub_bpe_divergence(
    keras_hub_roberta, tmp_path
):
    """Left out of the built-in corpus, caught when given as text."""
    from converter.tokenizers.references import reference_encoder

    outcome = write_tokenizer(
        fake_source(keras_hub_roberta["root"] / "preset"), _out_dir(tmp_path / "o", "roberta")
    )
    reference, name = reference_encoder(outcome.plan, 512)
    written = hf_encoder(load_hf(tmp_path / "o"))
    rows = [("it's O'Reilly's", None), ("a 'single' word", None)]
    result = compare(reference, written, rows, name, "hf", [])
    assert result.equal == 1 and result.first_difference["row"] == 1
