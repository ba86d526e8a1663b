"""BERT: transformers' TFBert* saves and google-research/bert TF1 checkpoints convert with every
tensor exact, load strictly, and verify within 1e-5; the TF1 reference model is itself checked
against TFBert*."""

from __future__ import annotations

import json

import numpy as np
import pytest
import transformers
from safetensors.numpy import load_file

from .conftest import BERT_HEAD_CLASSES, TF1_KINDS, copy_tree, mutated_copy, read_json, run_cli
from .fixture_cache import cached
from .mutations import swapped, verify_fails_at
from .producers import build_every_head


def _transformers_own_conversion(tf_dir, class_name):
    """An independent oracle: transformers' TF→PyTorch weight loader applied to an instantiated
    model (its from_pretrained(from_tf=True) route leaves parameters on the meta device)."""
    from transformers.modeling_tf_pytorch_utils import load_tf2_model_in_pytorch_model

    tf_model = getattr(transformers, "TF" + class_name).from_pretrained(str(tf_dir))
    pt_model = getattr(transformers, class_name)(tf_model.config)
    load_tf2_model_in_pytorch_model(pt_model, tf_model, allow_missing_keys=False)
    return {k: v.numpy() for k, v in pt_model.state_dict().items()}


def _assert_every_tensor_exact(out_dir, oracle):
    ours = load_file(str(out_dir / "model.safetensors"))
    assert ours, out_dir
    for name, value in ours.items():
        np.testing.assert_array_equal(value, oracle[name], err_msg=name)
    written_once = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    assert set(oracle) - set(ours) <= written_once


BERT_HEAD_SETTINGS = {
    "causal-lm": {"is_decoder": True},
    "question-answering": {"num_labels": 2},  # start and end logits
}


@pytest.fixture(scope="session")
def bert_hf_keras():
    root = cached(
        "tf-bert-heads",
        build_every_head,
        arch="bert",
        first_seed=50,
        per_head=BERT_HEAD_SETTINGS,
        num_labels=3,
    )
    return {head: root / head for head in BERT_HEAD_CLASSES}


@pytest.mark.parametrize("head", list(BERT_HEAD_CLASSES))
def test_hf_keras_bert_head_converts_exactly_and_verifies(head, bert_hf_keras, tmp_path):
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(bert_hf_keras[head]), str(out)])
    assert code == 0, err
    report = read_json(out / "conversion_report.json")
    assert report["head"] == head and report["class"] == BERT_HEAD_CLASSES[head]
    parity = read_json(out / "parity_report.json")
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-5
    _assert_every_tensor_exact(
        out, _transformers_own_conversion(bert_hf_keras[head], BERT_HEAD_CLASSES[head])
    )


@pytest.mark.parametrize("kind", list(TF1_KINDS))
def test_tf1_checkpoint_converts_exactly_loads_strictly_and_verifies(
    kind, tf1_checkpoints, tf1_converted
):
    out = tf1_converted[kind]
    report = read_json(out / "conversion_report.json")
    assert report["source"]["layout"] == "tf1-checkpoint"
    assert report["class"] == TF1_KINDS[kind]
    parity = read_json(out / "parity_report.json")
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-5
    # The checkpoint was written from this TFBert* model's weights: transformers' own loader,
    # applied to that model, must give the same tensors bit for bit.
    hf_dir = tf1_checkpoints[kind].parent / f"{kind}-hf"
    _assert_every_tensor_exact(out, _transformers_own_conversion(hf_dir, TF1_KINDS[kind]))
    model, info = getattr(transformers, TF1_KINDS[kind]).from_pretrained(
        str(out), output_loading_info=True
    )
    assert all(not v for v in info.values()), info
    config = read_json(out / "config.json")
    assert config["hidden_act"] == "gelu_new" and config["layer_norm_eps"] == 1e-12
    assert config["model_type"] == "bert"
    assert (out / "vocab.txt").read_text() == (tf1_checkpoints[kind] / "vocab.txt").read_text()


def test_tf1_optimizer_slots_are_ignored_with_reasons_and_labels_come_from_the_weights(
    tf1_converted,
):
    report = read_json(tf1_converted["classifier"] / "conversion_report.json")
    ignored = {t["name"]: t["reason"] for t in report["source_tensors"] if t["fate"] == "ignored"}
    mapped = report["counts"]["mapped"]
    assert len(ignored) == 2 * mapped + 1  # adam_m and adam_v per variable, and global_step
    assert "global_step" in ignored and "step counter" in ignored["global_step"]
    assert all("moment slot" in reason for name, reason in ignored.items() if name != "global_step")
    config = read_json(tf1_converted["classifier"] / "config.json")
    assert len(config["id2label"]) == 3  # bert_config.json has no label count
    act = next(a for a in report["assumptions"] if a["key"] == "hidden_act")
    assert (act["kind"], act["source_value"], act["value"]) == ("translated", "gelu", "gelu_new")
    assert "tanh" in act["reason"]  # the table's reason, said with the value


@pytest.mark.parametrize("kind", ["pretraining", "classifier"])
def test_tf1_reference_model_matches_transformers_tf_bert(kind, tf1_checkpoints):
    """The TF1 reference (the generic tf1-encoder, reading the names bert-tf1.yaml declares) must
    compute what TFBert* computes on the same weights (with gelu_new, modeling.py's "gelu")."""
    from converter.plan.analysis import analyse
    from converter.verify.inputs import make_inputs
    from converter.verify.runners import declared_runner

    analysis = analyse(tf1_checkpoints[kind])
    runner = declared_runner(analysis.plan)(analysis.source, analysis.plan)
    hf_dir = tf1_checkpoints[kind].parent / f"{kind}-hf"
    tf_model = getattr(transformers, "TF" + TF1_KINDS[kind]).from_pretrained(str(hf_dir))
    inputs = make_inputs(analysis.plan.dims, 0)
    for batch in inputs.batches:
        ours = runner.run(batch)
        theirs = tf_model(**batch.as_dict(), output_hidden_states=True, training=False)
        mask = batch.flat_mask()
        for i, h in enumerate(theirs.hidden_states):
            np.testing.assert_allclose(
                ours[f"hidden_states[{i}]"][mask], np.asarray(h)[mask], atol=1e-5, rtol=0
            )
        head = "prediction_logits" if kind == "pretraining" else "logits"
        np.testing.assert_allclose(
            np.asarray(ours[head])[..., :], np.asarray(theirs[head]), atol=1e-5, rtol=0
        )


def test_tf1_gelu_written_as_exact_gelu_is_caught(tf1_checkpoints, tf1_converted, tmp_path):
    out = copy_tree(tf1_converted["pretraining"], tmp_path / "mutated")
    config = read_json(out / "config.json")
    config["hidden_act"] = "gelu"  # what a converter that copies bert_config.json writes
    (out / "config.json").write_text(json.dumps(config))
    verify_fails_at(tf1_checkpoints["pretraining"], out, "hidden_states[1]")


def test_tf1_swapped_query_and_key_are_caught(tf1_checkpoints, tf1_converted, tmp_path):
    layer = "bert.encoder.layer.0.attention.self."
    swap = swapped(layer + "query", layer + "key")
    out = mutated_copy(tf1_converted["classifier"], tmp_path / "mutated", swap)
    verify_fails_at(tf1_checkpoints["classifier"], out, "hidden_states[1]")


def test_tf1_checkpoint_found_from_a_prefix_or_its_index_file(tf1_checkpoints, tmp_path):
    src = tf1_checkpoints["encoder"]
    for i, path in enumerate([src / "model.ckpt-100", src / "model.ckpt-100.index"]):
        code, _, err = run_cli(["convert", str(path), str(tmp_path / f"o{i}"), "--no-verify"])
        assert code == 0, err
        assert read_json(tmp_path / f"o{i}" / "conversion_report.json")["class"] == "BertModel"


def test_tf1_checkpoint_without_its_data_file_is_refused(tf1_checkpoints, tmp_path):
    src = copy_tree(tf1_checkpoints["encoder"], tmp_path / "src")
    (src / "model.ckpt-100.data-00000-of-00001").unlink()
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out")])
    assert code == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"tf2pt: error: {src / 'model.ckpt-100.index'}: ")
    assert "data file (model.ckpt-100.data-00000-of-0000N) is missing" in last
    assert not (tmp_path / "out").exists()


def test_tf1_checkpoint_without_bert_config_is_refused(tf1_checkpoints, tmp_path):
    src = copy_tree(tf1_checkpoints["encoder"], tmp_path / "src")
    (src / "bert_config.json").unlink()
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out")])
    assert code == 2 and "no bert_config.json" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_tf1_pretraining_checkpoint_forced_to_base_model_names_the_unplaced_heads(
    tf1_checkpoints, tmp_path
):
    src = tf1_checkpoints["pretraining"]
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out"), "--head", "base-model"])
    assert code == 1 and "Traceback" not in err
    assert "unexpected  cls/seq_relationship/output_weights [2, 32]" in err
    assert not (tmp_path / "out").exists()
