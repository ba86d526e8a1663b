"""TF1 (google-research/bert) checkpoints: vocab.txt becomes an HF tokenizer whose casing comes
from evidence, proven against a reference WordPiece; a wrong tokenizer publishes nothing."""

from __future__ import annotations

import dataclasses

import pytest

import converter.tokenizers as tokenizers

from .conftest import build_tf_bert, nothing_written, read_json, run_cli, save_tf1_checkpoint
from .test_tokenizers import cased_vocab


@pytest.fixture(scope="module")
def cased_tf1(tmp_path_factory):
    """An encoder-only TF1 checkpoint whose vocab.txt is a real cased BERT-style vocabulary."""
    root = tmp_path_factory.mktemp("tf1_cased")
    model = build_tf_bert(root / "hf", "BertModel", seed=3, hidden_act="gelu_new")
    src = save_tf1_checkpoint(model, root / "src", with_optimizer=False)
    (src / "vocab.txt").write_text("\n".join(cased_vocab()) + "\n", encoding="utf-8")
    return src


def test_cased_tf1_vocab_converts_without_lowercasing_and_says_why(cased_tf1, tmp_path):
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(cased_tf1), str(out)])
    assert code == 0, err
    assert read_json(out / "tokenizer_config.json")["do_lower_case"] is False
    tokenizer = read_json(out / "conversion_report.json")["tokenizer"]
    assert "uppercase" in tokenizer["evidence"][0] and "cased" in tokenizer["evidence"][0]
    assert tokenizer["parity"]["passed"]
    assert "reference WordPiece" in tokenizer["parity"]["reference"]
    assert "do_lower_case=False" in err
    card = (out / "README.md").read_text()
    assert "tokenizer parity passed" in card and "`do_lower_case=False`" in card


def test_a_tokenizer_that_lowercases_a_cased_model_fails_and_publishes_nothing(
    cased_tf1, tmp_path, monkeypatch
):
    real = tokenizers.write_hf_tokenizer

    def lowercasing(plan, *args, **kwargs):
        wrong = dataclasses.replace(plan, options={**plan.options, "do_lower_case": True})
        return real(wrong, *args, **kwargs)

    monkeypatch.setattr(tokenizers, "write_hf_tokenizer", lowercasing)
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(cased_tf1), str(out)])
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("tf2pt: error:") and "tokenizer parity failed" in last
    assert "Traceback" not in err
    assert nothing_written(out)
