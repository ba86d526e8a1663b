"""keras-hub RoBERTa (backbone, text classifier, masked LM) from `.keras`, preset dirs and
`.weights.h5`: every weight placed, EinsumDense kernels merged, positions re-offset, and parity
proven against keras-hub itself."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import load_file

from .conftest import (
    HEAD_CLASSES,
    KERAS_FORMS,
    KERAS_HUB_CLASSES,
    KERAS_HUB_TINY,
    copy_tree,
    randomize_keras_weights,
    read_json,
    run_cli,
)

CASES = [(head, form) for head in KERAS_HUB_CLASSES for form in KERAS_FORMS]


def _keras_weights(keras_hub_sources, head) -> dict[str, np.ndarray]:
    """The source variables by path, read back through keras-hub itself."""
    import keras

    model = keras.saving.load_model(str(keras_hub_sources[head]["model.keras"]), compile=False)
    return {w.path: np.asarray(w.numpy()) for w in model.weights}


@pytest.mark.parametrize(("head", "form"), CASES)
def test_every_form_converts_and_matches_keras_hub_within_1e_5(head, form, keras_hub_converted):
    out = keras_hub_converted[head, form]
    parity = read_json(out / "parity_report.json")
    assert parity["passed"] is True and parity["max_abs_diff"] <= 1e-5
    names = [o["name"] for o in parity["outputs"]]
    assert names[:3] == ["hidden_states[0]", "hidden_states[1]", "hidden_states[2]"]
    assert names[3:] == ([] if head == "base-model" else ["logits"])
    assert parity["not_compared"] == (["pooler_output"] if head == "base-model" else [])
    assert "keras-hub" in parity["versions"]
    report = read_json(out / "conversion_report.json")
    assert report["source"]["layout"] == "keras-hub"
    assert report["class"] == HEAD_CLASSES[head]
    assert report["counts"]["unexpected"] == 0 and report["counts"]["missing"] == 0
    config = read_json(out / "config.json")
    assert config["architectures"] == [HEAD_CLASSES[head]] and config["model_type"] == "roberta"
    assert config["max_position_embeddings"] == KERAS_HUB_TINY["max_sequence_length"] + 2
    assert (config["pad_token_id"], config["layer_norm_eps"], config["hidden_act"]) == (
        1,
        1e-5,
        "gelu",
    )
    assert (config["type_vocab_size"], config["num_attention_heads"]) == (1, 4)


def test_weights_land_exactly_with_heads_merged_and_positions_offset(
    keras_hub_sources, keras_hub_converted
):
    src = _keras_weights(keras_hub_sources, "sequence-classification")
    out_dir = keras_hub_converted["sequence-classification", "model.keras"]
    out = load_file(str(out_dir / "model.safetensors"))
    hidden = KERAS_HUB_TINY["hidden_dim"]
    layer1 = "transformer_layer_1/self_attention_layer"
    query = src[f"{layer1}/query/kernel"]  # [hidden, heads, head_dim]
    assert query.shape == (hidden, 4, 8)
    np.testing.assert_array_equal(
        out["roberta.encoder.layer.1.attention.self.query.weight"], query.reshape(hidden, -1).T
    )
    np.testing.assert_array_equal(
        out["roberta.encoder.layer.1.attention.self.query.bias"],
        src[f"{layer1}/query/bias"].reshape(-1),
    )
    attn_out = src[f"{layer1}/attention_output/kernel"]  # [heads, head_dim, hidden]
    np.testing.assert_array_equal(
        out["roberta.encoder.layer.1.attention.output.dense.weight"],
        attn_out.reshape(-1, hidden).T,
    )
    positions = out["roberta.embeddings.position_embeddings.weight"]
    keras_positions = src["embeddings/position_embedding/embeddings"]
    np.testing.assert_array_equal(positions[2:], keras_positions)
    np.testing.assert_array_equal(positions[:2], 0)
    np.testing.assert_array_equal(out["roberta.embeddings.token_type_embeddings.weight"], 0)
    assert out["roberta.embeddings.token_type_embeddings.weight"].shape == (1, hidden)
    np.testing.assert_array_equal(out["classifier.out_proj.weight"], src["logits/kernel"].T)


def test_three_forms_give_byte_identical_weights(keras_hub_converted):
    for head in KERAS_HUB_CLASSES:
        files = {
            form: (keras_hub_converted[head, form] / "model.safetensors").read_bytes()
            for form in KERAS_FORMS
        }
        assert len(set(files.values())) == 1, head


def test_bare_weights_file_infers_the_config_the_keras_file_declares(keras_hub_converted):
    for head in KERAS_HUB_CLASSES:
        declared = read_json(keras_hub_converted[head, "model.keras"] / "config.json")
        inferred = read_json(keras_hub_converted[head, "model.weights.h5"] / "config.json")
        dims = (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "id2label",
        )
        assert {k: inferred.get(k) for k in dims} == {k: declared.get(k) for k in dims}, head


def test_optimizer_slots_are_ignored_with_a_reason_and_softmax_is_reported(keras_hub_converted):
    out = keras_hub_converted["sequence-classification", "model.keras"]
    report = read_json(out / "conversion_report.json")
    ignored = [t for t in report["source_tensors"] if t["fate"] == "ignored"]
    # iteration + learning rate + Adam's two slots for each model variable
    assert report["counts"]["mapped"] == 40
    assert len(ignored) == 2 + 2 * 40
    assert all(t["name"].startswith("optimizer/") and "optimizer" in t["reason"] for t in ignored)
    assert any("'softmax' activation" in n and "logits" in n for n in report["notes"])


def test_masked_lm_decoder_is_tied_to_the_token_embedding(keras_hub_converted):
    import torch
    import transformers

    out = keras_hub_converted["masked-lm", "preset"]
    assert "lm_head.decoder.weight" not in load_file(str(out / "model.safetensors"))
    model = transformers.RobertaForMaskedLM.from_pretrained(str(out))
    embeddings = model.roberta.embeddings.word_embeddings.weight
    assert model.lm_head.decoder.weight.data_ptr() == embeddings.data_ptr()
    assert torch.equal(model.lm_head.decoder.bias, model.lm_head.bias)


def test_position_rows_shifted_by_one_are_caught(keras_hub_sources, keras_hub_converted, tmp_path):
    from safetensors.numpy import save_file

    out = copy_tree(keras_hub_converted["masked-lm", "preset"], tmp_path / "mutated")
    tensors = load_file(str(out / "model.safetensors"))
    name = "roberta.embeddings.position_embeddings.weight"
    tensors[name] = np.ascontiguousarray(np.roll(tensors[name], -1, axis=0))  # offset 1, not 2
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    code, _, err = run_cli(["verify", str(keras_hub_sources["masked-lm"]["preset"]), str(out)])
    assert code == 1 and "parity failed" in err and "Traceback" not in err
    assert read_json(out / "parity_report.json")["first_divergence"]["name"] == "hidden_states[0]"


def test_a_keras_file_that_is_not_a_zip_is_refused(tmp_path):
    src = tmp_path / "model.keras"
    src.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(200))  # e.g. an old HDF5 save renamed .keras
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out")])
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"tf2pt: error: {src}: is not a zip archive")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_a_keras_file_of_a_model_that_is_not_keras_hub_is_refused(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.save(str(tmp_path / "plain.keras"))
    code, _, err = run_cli(["convert", str(tmp_path / "plain.keras"), str(tmp_path / "out")])
    assert code == 2 and "Traceback" not in err
    assert "is a Sequential, not a keras-hub task or backbone" in err
    assert not (tmp_path / "out").exists()


def test_a_truncated_weights_file_is_refused(keras_hub_sources, tmp_path):
    data = keras_hub_sources["base-model"]["model.weights.h5"].read_bytes()
    src = tmp_path / "model.weights.h5"
    src.write_bytes(data[: len(data) // 3])
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out"), "--no-verify"])
    assert code == 2 and "Traceback" not in err and str(src) in err.splitlines()[-1]
    assert not (tmp_path / "out").exists()


def test_a_preset_whose_weights_file_is_missing_names_it(keras_hub_sources, tmp_path):
    src = copy_tree(keras_hub_sources["sequence-classification"]["preset"], tmp_path / "preset")
    (src / "task.weights.h5").unlink()
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out"), "--no-verify"])
    assert code == 1 and "Traceback" not in err
    assert "missing target parameter(s)" in err and "classifier" in err
    assert not (tmp_path / "out").exists()


def test_a_backbone_that_keras_numbered_is_still_found(tmp_path):
    """Keras keeps layer names unique: a process that built a backbone before saves the next one
    as `roberta_backbone_1` (`_2`, …); its bare weights file is still a RoBERTa backbone."""
    import keras_hub

    keras_hub.models.RobertaBackbone(**KERAS_HUB_TINY)
    second = keras_hub.models.RobertaBackbone(**KERAS_HUB_TINY)
    randomize_keras_weights(second, 3)
    assert second.name.startswith("roberta_backbone_"), second.name
    second.save_weights(str(tmp_path / "model.weights.h5"))
    code, _, err = run_cli(["convert", str(tmp_path / "model.weights.h5"), str(tmp_path / "out")])
    assert code == 0, err
    assert read_json(tmp_path / "out" / "config.json")["model_type"] == "roberta"
