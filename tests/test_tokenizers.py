"""Tokenizer conversion and parity: the output's HF tokenizer gives the source tokenizer's ids.

Sources are made by the real producers: keras-hub's RobertaTokenizer (with a byte-level BPE
trained by the `tokenizers` library, holding merged-space tokens as RoBERTa's does), and
google-research/bert TF1 checkpoints with a cased and an uncased real vocabulary.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from converter.tokenizers import check_tokenizer, write_tokenizer
from converter.tokenizers.casing import decide
from converter.tokenizers.corpus import PAIRS, SINGLES
from converter.tokenizers.hf_files import write_hf_tokenizer
from converter.tokenizers.parity import compare, corpus_rows
from converter.tokenizers.references import hf_ids, load_hf
from converter.tokenizers.wordpiece import WordPiece

from .conftest import KERAS_HUB_TINY, randomize_keras_weights, read_json, run_cli
from .real_weights import minilm_dir
from .tokenizer_helpers import fake_source, out_dir, train_byte_level_bpe

ROWS = len(SINGLES) + len(PAIRS)


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


# --- the reference WordPiece and casing evidence (no TensorFlow) --------------------------------


def test_reference_wordpiece_is_hf_bert_but_for_long_words_and_a_final_capital_sigma():
    """google-research/bert's WordpieceTokenizer gives up on words over 200 characters,
    Hugging Face's BertTokenizer over 100; BERT lowercases with Python's str.lower(), which
    ends a word's Σ as ς, Hugging Face letter by letter (σ). On the real MiniLM vocab they agree
    on every corpus row but the 120-character one and the Greek capitals."""
    vocab = minilm_vocab()
    reference = WordPiece({t: i for i, t in enumerate(vocab)}, lowercase=True)
    rows = corpus_rows()
    hf = hf_ids(load_hf(minilm_dir()), rows)
    result = compare([reference.encode(t, p) for t, p in rows], hf, rows, "reference", "hf", [])
    assert result.rows == ROWS
    differing = [rows[i][0] for i in result.differing]
    assert differing[0] == "x" * 120 and "ΟΔΟΣ" in differing[1] and len(differing) == 2


def test_casing_comes_from_a_flag_else_from_the_vocabulary(tmp_path):
    assert decide(tmp_path, {}, minilm_vocab()).lowercase is True
    cased = decide(tmp_path, {}, cased_vocab())
    assert cased.lowercase is False and "uppercase" in cased.evidence
    (tmp_path / "bert_config.json").write_text(json.dumps({"do_lower_case": True}))
    flagged = decide(tmp_path, {}, cased_vocab())
    assert flagged.lowercase is True and "bert_config.json" in flagged.evidence


def test_lowercasing_a_cased_vocabulary_fails_tokenizer_parity(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "vocab.txt").write_text("\n".join(cased_vocab()) + "\n", encoding="utf-8")
    good = out_dir(tmp_path / "good", "bert")
    outcome = write_tokenizer(fake_source(src), good)
    assert outcome.plan.options["do_lower_case"] is False
    assert check_tokenizer(outcome, good).passed
    wrong = out_dir(tmp_path / "wrong", "bert")  # the classic mistake: default lowercasing
    plan = outcome.plan
    plan.options = {**plan.options, "do_lower_case": True}
    write_hf_tokenizer(plan, 512, wrong)
    plan.options["do_lower_case"] = False
    result = check_tokenizer(outcome, wrong)
    assert not result.passed
    assert result.first_difference["text"] == "Hello world!"  # "Hello" is a cased piece
    assert result.equal < result.rows - 5


# --- keras-hub sources ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_hub_roberta(tmp_path_factory) -> dict[str, Path]:
    """A keras-hub RobertaTextClassifier with its preprocessor and a trained byte-level BPE that
    holds merged-space tokens, saved as a preset, a .keras file and a bare .weights.h5;
    converted once (with verification) in each tokenizer style."""
    import keras_hub

    root = tmp_path_factory.mktemp("kh_tok")
    bpe = train_byte_level_bpe(root / "bpe")
    vocab = json.loads((bpe / "vocab.json").read_text())
    assert {"ĠĠ", "ĠĠĠ"} <= set(vocab)
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
    outs = {}
    for style in ("faithful", "canonical"):
        outs[style] = root / f"out-{style}"
        code, _, err = run_cli(
            ["convert", str(root / "preset"), str(outs[style]), "--tokenizer-style", style]
        )
        assert code == 0, err
    return {"root": root, "out": outs["faithful"], "canonical": outs["canonical"]}


WHITESPACE_ROWS = [SINGLES.index(t) for t in SINGLES if t.startswith(("Whitespace", "   "))]


def test_keras_hub_bpe_with_merged_space_tokens_converts_faithfully(keras_hub_roberta):
    """keras-hub splits whitespace runs its own way: the written tokenizer does the same, so
    parity passes on every row; the rows where Hugging Face's RoBERTa would differ are named."""
    out = keras_hub_roberta["out"]
    assert "class_name" in read_json(keras_hub_roberta["root"] / "preset" / "tokenizer.json")
    assert {"added_tokens", "model"} <= set(read_json(out / "tokenizer.json"))  # not the Keras one
    assert read_json(out / "tokenizer_config.json")["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert (out / "merges.txt").is_file()  # the vocabulary, for tools; AutoTokenizer: the json
    tokenizer = read_json(out / "conversion_report.json")["tokenizer"]
    assert tokenizer["settings"] == {"add_prefix_space": False}
    assert tokenizer["style"] == "faithful" and tokenizer["rules"].startswith("keras-hub's Byte")
    parity = tokenizer["parity"]
    assert parity["passed"] and parity["rows_equal"] == parity["rows_compared"] == ROWS
    deviation = tokenizer["deviation"]
    assert not deviation["chosen"]
    assert [r["row"] for r in deviation["rows"]] == WHITESPACE_ROWS
    markdown = (out / "parity_report.md").read_text()
    assert "Tokenizer parity: PASSED" in markdown and "deviates from Hugging Face's" in markdown


def test_canonical_style_writes_robertas_tokenizer_as_a_chosen_deviation(keras_hub_roberta):
    out = keras_hub_roberta["canonical"]
    config = read_json(out / "tokenizer_config.json")
    assert config["tokenizer_class"] == "RobertaTokenizer" and (out / "merges.txt").is_file()
    tokenizer = read_json(out / "conversion_report.json")["tokenizer"]
    assert tokenizer["style"] == "canonical" and tokenizer["deviation"]["chosen"]
    parity = tokenizer["parity"]
    assert parity["passed"] and parity["rows_differing_by_choice"] == WHITESPACE_ROWS
    assert parity["rows_equal"] == ROWS - len(WHITESPACE_ROWS)
    markdown = (out / "parity_report.md").read_text()
    assert "chosen deviation (--tokenizer-style canonical)" in markdown
    assert "Tokenizer parity: PASSED" in markdown


def test_keras_file_and_tokenizer_option_give_the_same_tokenizer_files(keras_hub_roberta, tmp_path):
    root, out = keras_hub_roberta["root"], keras_hub_roberta["out"]
    runs = {
        "keras": [str(root / "model.keras")],
        "weights": [str(root / "model.weights.h5"), "--tokenizer", str(root / "preset")],
    }
    for name, args in runs.items():
        code, _, err = run_cli(["convert", *args, str(tmp_path / name), "--no-verify"])
        assert code == 0, err
        for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            assert (tmp_path / name / f).read_bytes() == (out / f).read_bytes(), (name, f)


def test_flipped_add_prefix_space_fails_tokenizer_parity(keras_hub_roberta, tmp_path):
    outcome = write_tokenizer(
        fake_source(keras_hub_roberta["root"] / "preset"), out_dir(tmp_path / "wrong", "roberta")
    )
    plan = outcome.plan
    plan.options = {"add_prefix_space": True}
    write_hf_tokenizer(plan, 512, tmp_path / "wrong")
    plan.options = {"add_prefix_space": False}
    result = check_tokenizer(outcome, tmp_path / "wrong")
    assert not result.passed and result.first_difference["row"] == 0
    assert "keras-hub RobertaTokenizer" in result.reference


REAL_TEXT = "Café owners in Zürich say   the new tram line is a great idea!  🚋"
PIPELINE = (
    "import sys, json; from transformers import pipeline, AutoTokenizer; "
    "p = pipeline('text-classification', model=sys.argv[1]); "
    "print(json.dumps([p(sys.argv[2], truncation=True), AutoTokenizer.from_pretrained(sys.argv[1])"
    "(sys.argv[2])['input_ids']]))"
)


def test_converted_keras_hub_dir_runs_in_a_pipeline_in_transformers_4_and_5(keras_hub_roberta, hf5):
    from transformers import AutoTokenizer, pipeline

    out = keras_hub_roberta["out"]
    # longer than the tiny model's 38 positions: truncation must follow model_max_length
    (v4,) = pipeline("text-classification", model=str(out))(REAL_TEXT, truncation=True)
    ids = AutoTokenizer.from_pretrained(str(out))(REAL_TEXT)["input_ids"]
    result = hf5.run(PIPELINE, out, REAL_TEXT)
    assert result.returncode == 0, result.stderr[-2000:]
    (v5,), ids5 = json.loads(result.stdout.strip().splitlines()[-1])
    assert v4["label"] == v5["label"] and v4["score"] == pytest.approx(v5["score"], abs=1e-5)
    assert ids5 == ids  # the faithful split survives transformers 5


def test_verify_rechecks_the_tokenizer_of_an_existing_output(keras_hub_roberta, tmp_path):
    preset = keras_hub_roberta["root"] / "preset"
    # the canonical output: its chosen deviation is read back from its conversion report
    canonical = shutil.copytree(keras_hub_roberta["canonical"], tmp_path / "canonical")
    code, _, err = run_cli(["verify", str(preset), str(canonical)])
    assert code == 0 and "tokenizer parity passed" in err, err
    out = shutil.copytree(keras_hub_roberta["out"], tmp_path / "out")
    plan = write_tokenizer(fake_source(preset), out_dir(tmp_path / "scratch", "roberta")).plan
    plan.options = {"add_prefix_space": True}
    write_hf_tokenizer(plan, 38, out)
    code, _, err = run_cli(["verify", str(preset), str(out)])
    assert code == 1 and "tokenizer parity failed" in err.strip().splitlines()[-1]
