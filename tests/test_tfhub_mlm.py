"""TF Hub BERT SavedModels exported by Model Garden's export_tfhub_lib with `with_mlm=True`: the
masked LM they carry (the `mlm` attribute, a BertPretrainerV2) converts to BertForMaskedLM by
default and is proven against that sub-model's own logits; the encoder alone converts on request.
An export without it names the heads that do exist when the masked LM is asked for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from .conftest import mutated_copy, read_json, run_cli
from .producers import BERT_TINY, settings_as

SIZES = {  # the tiny BERT's dimensions, for Model Garden's BertConfig
    **settings_as(
        BERT_TINY,
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "max_position_embeddings",
        "type_vocab_size",
    ),
    "hidden_act": "gelu",  # Model Garden's get_activation makes it the tanh form, as TF Hub's BERTs
}
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(94)]


def _export(root: Path, with_mlm: bool, seed: int):
    """A checkpoint of Model Garden's BertPretrainerV2 (its MaskedLM built by one call), every
    weight random, exported as TF Hub does; returns the export dir and the pretrainer."""
    import tensorflow as tf
    from official.legacy.bert import configs
    from official.modeling import tf_utils
    from official.nlp.modeling import models
    from official.nlp.tools import export_tfhub_lib

    config = configs.BertConfig(**SIZES)
    encoder = export_tfhub_lib.get_bert_encoder(config)
    pretrainer = models.BertPretrainerV2(
        encoder_network=encoder, mlm_activation=tf_utils.get_activation(config.hidden_act)
    )
    ids = np.array([[2, 5, 6, 3]], np.int32)
    pretrainer(
        {
            "input_word_ids": ids,
            "input_mask": np.ones_like(ids),
            "input_type_ids": np.zeros_like(ids),
            "masked_lm_positions": np.array([[1, 2]], np.int32),
        }
    )
    rng = np.random.default_rng(seed)
    for w in pretrainer.weights:
        base = 1.0 if "gamma" in w.name else 0.0
        w.assign(base + rng.normal(0.0, 0.1, size=tuple(w.shape)).astype(np.float32))
    items = pretrainer.checkpoint_items if with_mlm else {"encoder": encoder}
    prefix = tf.train.Checkpoint(**items).save(str(root / "ckpt" / "ckpt"))
    (root / "vocab.txt").write_text("\n".join(VOCAB))
    export_tfhub_lib.export_model(
        str(root / "hub"),
        bert_config=config,
        model_checkpoint_path=prefix,
        with_mlm=with_mlm,
        vocab_file=str(root / "vocab.txt"),
        do_lower_case=True,
    )
    return root / "hub", pretrainer


@pytest.fixture(scope="module")
def with_mlm(tmp_path_factory):
    root = tmp_path_factory.mktemp("tfhub_mlm")
    src, pretrainer = _export(root, with_mlm=True, seed=31)
    outs = {}
    for head in (None, "base-model"):
        out = root / f"out-{head or 'default'}"
        code, _, err = run_cli(["convert", str(src), str(out), *(["--head", head] if head else [])])
        assert code == 0, err
        outs[head or "default"] = out
    return src, pretrainer, outs


def _ignored(out: Path) -> dict[str, str]:
    report = read_json(out / "conversion_report.json")
    return {t["name"]: t["reason"] for t in report["source_tensors"] if t["fate"] == "ignored"}


def test_a_with_mlm_export_converts_to_bert_for_masked_lm_proven_on_its_own_logits(with_mlm):
    src, pretrainer, outs = with_mlm
    out = outs["default"]
    config = read_json(out / "config.json")
    assert config["architectures"] == ["BertForMaskedLM"] and config["hidden_act"] == "gelu_new"
    parity = read_json(out / "parity_report.json")
    assert parity["passed"]
    assert [o["name"] for o in parity["outputs"]] == [
        "hidden_states[1]",
        "hidden_states[2]",
        "logits",
    ]
    ours = load_file(str(out / "model.safetensors"))
    mlm = pretrainer.masked_lm
    np.testing.assert_array_equal(
        ours["cls.predictions.transform.dense.weight"], np.asarray(mlm.dense.kernel).T
    )
    np.testing.assert_array_equal(ours["cls.predictions.bias"], np.asarray(mlm.bias))
    assert "cls.predictions.decoder.weight" not in ours  # tied to the word embeddings
    assert "--head base-model" in _ignored(out)["pooler_transform/kernel"]


def test_the_encoder_alone_on_request_keeps_the_pooler_and_sets_the_mlm_aside(with_mlm):
    _, pretrainer, outs = with_mlm
    out = outs["base-model"]
    assert read_json(out / "config.json")["architectures"] == ["BertModel"]
    parity = read_json(out / "parity_report.json")
    assert parity["passed"] and parity["outputs"][-1]["name"] == "pooler_output"
    ignored = _ignored(out)
    mlm_tensors = [n for n in ignored if n.startswith("bert/cls/predictions/")]
    assert len(mlm_tensors) == 5 and all("mlm" in ignored[n] for n in mlm_tensors)
    ours = load_file(str(out / "model.safetensors"))
    pooler = pretrainer.encoder_network.pooler_layer
    np.testing.assert_array_equal(ours["pooler.dense.weight"], np.asarray(pooler.kernel).T)


def test_a_wrong_output_bias_is_caught_at_the_logits(with_mlm, tmp_path):
    """The logits are the `mlm` model's own: a zeroed output bias fails there and only there."""
    src, _, outs = with_mlm

    def zero_bias(tensors):
        tensors["cls.predictions.bias"] = np.zeros_like(tensors["cls.predictions.bias"])

    out = mutated_copy(outs["default"], tmp_path / "m", mutate_tensors=zero_bias)
    code, _, err = run_cli(["verify", str(src), str(out)])
    assert code == 1 and "parity failed" in err and "Traceback" not in err
    assert read_json(out / "parity_report.json")["first_divergence"]["name"] == "logits"


def test_an_export_without_mlm_asked_for_the_masked_lm_names_only_the_head_it_has(tmp_path):
    src, _ = _export(tmp_path, with_mlm=False, seed=32)
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(src), str(out), "--head", "masked-lm"])
    last = err.strip().splitlines()[-1]
    assert code == 1 and "Traceback" not in err and not out.exists()
    assert "cannot account for every weight as BertForMaskedLM" in err
    assert last.endswith("pass --head base-model"), last
    code, _, err = run_cli(["convert", str(src), str(out), "--head", "next-sentence"])
    assert code == 2 and "choose one of: base-model, masked-lm" in err
    code, _, err = run_cli(["convert", str(src), str(out)])  # its one head, detected
    assert code == 0 and "bert-tfhub → BertModel" in err, err
