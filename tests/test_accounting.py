"""The accounting refuses anything it cannot place, names it, and writes nothing."""

from __future__ import annotations

import json

from converter.plan.fates import SourceFate, TargetFate

from .conftest import copy_tree, nothing_written, run_cli
from .h5edit import add_weight, delete_weight, scale_weight


def test_extra_unknown_tensor_is_named_with_shape_and_closest_names(tf_checkpoints, tmp_path):
    src = copy_tree(tf_checkpoints["sequence-classification"], tmp_path / "src")
    add_weight(
        src / "tf_model.h5",
        "classifier",
        "tf_roberta_for_sequence_classification/classifier/dense2/kernel:0",
        (32, 3),
    )
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(src), str(out), "--no-verify"])
    assert code == 1
    assert "unexpected  classifier/dense2/kernel [32, 3]" in err
    assert "did you mean: classifier/dense/kernel" in err
    assert err.strip().splitlines()[-1].startswith("tf2pt: error: ")
    assert nothing_written(out)


def test_deleted_tensor_names_the_parameter_it_should_have_become(tf_checkpoints, tmp_path):
    src = copy_tree(tf_checkpoints["sequence-classification"], tmp_path / "src")
    delete_weight(src / "tf_model.h5", "roberta", "layer_._1/attention/self/key/bias:0")
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(src), str(out), "--no-verify"])
    assert code == 1
    assert "missing     roberta.encoder.layer.1.attention.self.key.bias" in err
    assert "roberta/encoder/layer_._1/attention/self/key/bias" in err
    assert nothing_written(out)


def test_num_labels_conflict_names_both_numbers_and_the_fix(tf_checkpoints, tmp_path):
    src = copy_tree(tf_checkpoints["sequence-classification"], tmp_path / "src")
    config = json.loads((src / "config.json").read_text())
    config["id2label"] = {str(i): f"c{i}" for i in range(5)}
    config["label2id"] = {f"c{i}": i for i in range(5)}
    (src / "config.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(src), str(out), "--no-verify"])
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert "num_labels=5" in last and "num_labels=2" in last and "--num-labels 2" in last
    assert "config.json" in last
    assert nothing_written(out)

    code, _, err = run_cli(["convert", str(src), str(out), "--num-labels", "2"])
    assert code == 0, err
    written = json.loads((out / "config.json").read_text())
    assert written["id2label"] == {"0": "LABEL_0", "1": "LABEL_1"}
    report = json.loads((out / "conversion_report.json").read_text())
    assert any("id2label had 5 names" in n for n in report["notes"])


def test_layer_count_conflict_between_config_and_weights(tf_checkpoints, tmp_path):
    src = copy_tree(tf_checkpoints["base-model"], tmp_path / "src")
    config = json.loads((src / "config.json").read_text())
    config["num_hidden_layers"] = 1
    (src / "config.json").write_text(json.dumps(config))
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out"), "--no-verify"])
    assert code == 1
    assert "num_hidden_layers=1 but the weights hold 2 layers" in err
    assert nothing_written(tmp_path / "out")


def test_masked_lm_stored_copies_that_differ_are_refused(tf_checkpoints, tmp_path):
    src = copy_tree(tf_checkpoints["masked-lm"], tmp_path / "src")
    scale_weight(src / "tf_model.h5", "lm_head", "word_embeddings/weight:0", 2.0)
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(src), str(out), "--no-verify"])
    assert code == 1
    assert "stored copy 'lm_head/roberta/embeddings/word_embeddings/weight' differs" in err
    assert nothing_written(out)


def test_unsupported_architecture_names_what_was_found_and_expected(tf_checkpoints, tmp_path):
    src = copy_tree(tf_checkpoints["base-model"], tmp_path / "src")
    config = json.loads((src / "config.json").read_text())
    config["model_type"] = "gpt2"
    (src / "config.json").write_text(json.dumps(config))
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out"), "--no-verify"])
    assert code == 2
    assert "model_type 'gpt2' is not a supported architecture" in err and "roberta" in err


def test_head_override_that_does_not_fit_the_weights_is_refused(tf_checkpoints, tmp_path):
    src = tf_checkpoints["sequence-classification"]
    code, _, err = run_cli(
        ["convert", str(src), str(tmp_path / "out"), "--no-verify", "--head", "question-answering"]
    )
    assert code == 1
    assert "missing     qa_outputs.weight" in err
    assert "unexpected  classifier/out_proj/kernel" in err


def test_inspect_lists_every_tensor_with_its_fate(tf_checkpoints):
    code, out, err = run_cli(["inspect", str(tf_checkpoints["masked-lm"]), "--json"])
    assert code == 0, err
    data = json.loads(out)
    assert data["class"] == "RobertaForMaskedLM" and data["clean"]
    rows = {t["name"]: t for t in data["tensors"]}
    bias = rows["lm_head/bias"]
    assert (bias["fate"], bias["target"], bias["text"]) == (
        "mapped",
        "lm_head.bias",
        "→ lm_head.bias",
    )
    copy = rows["lm_head/roberta/embeddings/word_embeddings/weight"]
    assert copy["fate"] == "duplicate" and copy["text"].startswith("= copy of")
    assert copy["same_as"] == "roberta/embeddings/word_embeddings/weight"
    query = rows["roberta/encoder/layer_._0/attention/self/query/kernel"]
    assert query["ops"] == ["transpose"] and "[transpose]" in query["text"]
    # the config shown is what the table's shapes and layer placeholders name
    assert {"vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size"} <= set(
        data["config"]
    )
    assert data["config"]["num_attention_heads"] == 4  # the family's guessed key, from the config


def test_inspect_and_the_conversion_report_give_each_tensor_one_fate_word(
    converted, tf_checkpoints
):
    """One vocabulary: the fates `inspect` shows are the conversion report's, word for word."""
    code, out, err = run_cli(["inspect", str(tf_checkpoints["masked-lm"]), "--json"])
    assert code == 0, err
    shown = {t["name"]: t["fate"] for t in json.loads(out)["tensors"]}
    report = json.loads((converted["masked-lm"] / "conversion_report.json").read_text())
    written = {t["name"]: t["fate"] for t in report["source_tensors"]}
    assert shown == written
    assert set(written.values()) == {SourceFate.MAPPED, SourceFate.DUPLICATE}
    hows = {t["how"] for t in report["target_parameters"]}
    assert hows == {TargetFate.PRODUCED, TargetFate.TIED}
