"""The output's README.md model card: hub front matter, loading, provenance, parity figures."""

from __future__ import annotations

from converter.report.model_card import model_card

from .conftest import read_json, run_cli


def test_card_is_byte_identical_on_rerun_and_says_when_parity_was_not_run(tf_checkpoints, tmp_path):
    src = tf_checkpoints["masked-lm"]
    out = tmp_path / "my-model"
    cards = []
    for extra in ([], ["--force"]):
        code, _, err = run_cli(["convert", str(src), str(out), "--no-verify", *extra])
        assert code == 0, err
        cards.append((out / "README.md").read_bytes())
    assert cards[0] == cards[1]
    card = cards[0].decode()
    assert card.startswith("---\nlibrary_name: transformers\n")
    assert "pipeline_tag: fill-mask" in card
    assert "model = RobertaForMaskedLM.from_pretrained(where)" in card
    assert "Parity was not run" in card
    counts = read_json(out / "conversion_report.json")["counts"]
    assert f"| mapped to a PyTorch parameter | {counts['mapped']:,} |" in card
    assert "README.md" in read_json(out / "conversion_report.json")["output_files"]


def _report(**source):
    return {
        "tool": {"name": "tf2pt", "version": "9.9"},
        "source": {"path": "/ckpt", "layout": "hf-keras", "weight_files": ["tf_model.h5"]} | source,
        "table": "roberta-hf-keras",
        "architecture": "roberta",
        "head": "sequence-classification",
        "class": "RobertaForSequenceClassification",
        "counts": {"source_tensors": 3, "mapped": 3, "missing": 0},
    }


def test_card_shows_the_parity_criterion_and_each_output_tolerance():
    parity = {
        "passed": False,
        "criterion": "measured float32 noise × 8",
        "outputs": [
            {
                "name": "hidden_states[0]",
                "description": "embeddings output",
                "max_abs_diff": 2e-7,
                "tolerance": 4e-6,
                "passed": True,
            },
            {
                "name": "logits",
                "description": "head output (logits)",
                "max_abs_diff": 0.25,
                "tolerance": 3e-5,
                "passed": False,
            },
        ],
    }
    card = model_card(_report(name_or_path="FacebookAI/roberta-base"), parity)
    assert "base_model: FacebookAI/roberta-base" in card
    assert "Verdict: **FAILED**; criterion: measured float32 noise × 8." in card
    assert "| `hidden_states[0]` | embeddings output | 2.000e-07 | 4.000e-06 | yes |" in card
    assert "| `logits` | head output (logits) | 2.500e-01 | 3.000e-05 | NO |" in card
    local = model_card(_report(name_or_path="/home/me/ckpt"), None)
    assert "base_model" not in local  # a local path is not a hub id
