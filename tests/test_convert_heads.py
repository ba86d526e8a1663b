"""Every RoBERTa head converts exactly, loads strictly, and matches the TF model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from .conftest import HEAD_CLASSES


def _pt_model(out_dir, class_name):
    import transformers

    model, info = getattr(transformers, class_name).from_pretrained(
        str(out_dir), output_loading_info=True
    )
    return model, info


@pytest.mark.parametrize("head", list(HEAD_CLASSES))
def test_output_loads_strictly_with_no_meta_parameters(head, converted):
    model, info = _pt_model(converted[head], HEAD_CLASSES[head])
    assert {k: v for k, v in info.items() if v} == {}
    assert not [n for n, p in model.named_parameters() if p.device.type == "meta"]
    config = json.loads((converted[head] / "config.json").read_text())
    assert config["architectures"] == [HEAD_CLASSES[head]]


@pytest.mark.parametrize("head", list(HEAD_CLASSES))
def test_every_tensor_equals_its_source_after_the_declared_transpose(
    head, tf_checkpoints, converted
):
    """Oracle: transformers' own TF→PT name conversion, independent of our YAML tables."""
    import h5py
    from transformers.modeling_tf_pytorch_utils import convert_tf_weight_name_to_pt_weight_name

    written = load_file(str(converted[head] / "model.safetensors"))
    seen = set()
    with h5py.File(tf_checkpoints[head] / "tf_model.h5", "r") as h5:
        for group in h5.attrs["layer_names"]:
            for weight_name in h5[group].attrs["weight_names"]:
                array = h5[group][weight_name][()]
                name, transpose = convert_tf_weight_name_to_pt_weight_name(
                    weight_name, tf_weight_shape=array.shape
                )
                if transpose.name != "NO":
                    array = array.T
                if head == "base-model":  # RobertaModel's own keys have no base-model prefix
                    name = name.removeprefix("roberta.")
                # (the MLM head's stored copy of the embeddings maps onto the same names)
                expected = written[name]
                np.testing.assert_array_equal(expected, array, err_msg=name)
                seen.add(name)
    tied = {"lm_head.decoder.weight", "lm_head.decoder.bias"}
    assert set(written) == seen - tied


@pytest.mark.parametrize("head", list(HEAD_CLASSES))
def test_pytorch_outputs_match_the_tf_model_on_a_padded_batch(head, tf_checkpoints, converted):
    import tensorflow as tf
    import torch
    import transformers

    class_name = HEAD_CLASSES[head]
    tf_model = getattr(transformers, "TF" + class_name).from_pretrained(str(tf_checkpoints[head]))
    pt_model, _ = _pt_model(converted[head], class_name)
    pt_model.eval()
    ids = np.array([[0, 5, 6, 7, 8, 9, 2], [0, 11, 12, 2, 1, 1, 1]], dtype=np.int64)
    mask = (ids != 1).astype(np.int64)
    if head == "multiple-choice":
        ids, mask = ids[None], mask[None]
    tf_out = tf_model(input_ids=tf.constant(ids), attention_mask=tf.constant(mask), training=False)
    with torch.no_grad():
        pt_out = pt_model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    keys = [k for k in pt_out.keys() if k not in ("hidden_states", "past_key_values")]
    assert keys
    real = mask.reshape(-1, ids.shape[-1]).astype(bool)
    for key in keys:
        a, b = np.asarray(tf_out[key]), pt_out[key].numpy()
        if a.ndim >= 2 and a.shape[:2] == real.shape:
            a, b = a[real], b[real]
        np.testing.assert_allclose(b, a, atol=1e-5, rtol=0, err_msg=key)


def test_masked_lm_decoder_is_tied_to_word_embeddings(converted):
    model, _ = _pt_model(converted["masked-lm"], "RobertaForMaskedLM")
    assert (
        model.lm_head.decoder.weight.data_ptr()
        == model.roberta.embeddings.word_embeddings.weight.data_ptr()
    )
    assert model.lm_head.decoder.bias.data_ptr() == model.lm_head.bias.data_ptr()
    report = json.loads((converted["masked-lm"] / "conversion_report.json").read_text())
    copies = [r for r in report["source_tensors"] if r["fate"] == "duplicate"]
    assert len(copies) == 5 and all(r["checked"] == "equal" for r in copies)


def test_report_accounts_for_every_source_tensor_and_target(converted, tf_checkpoints):
    import h5py

    report = json.loads((converted["masked-lm"] / "conversion_report.json").read_text())
    with h5py.File(tf_checkpoints["masked-lm"] / "tf_model.h5", "r") as h5:
        stored = sum(len(h5[g].attrs["weight_names"]) for g in h5.attrs["layer_names"])
    assert len(report["source_tensors"]) == stored
    assert {r["fate"] for r in report["source_tensors"]} <= {"mapped", "duplicate", "ignored"}
    assert report["counts"]["unexpected"] == 0 and report["counts"]["missing"] == 0


@pytest.mark.parametrize("head", list(HEAD_CLASSES))
def test_table_targets_equal_the_pytorch_class_state_dict(head, tf_checkpoints):
    """The YAML table alone must name every parameter the PyTorch class has (meta device)."""
    import torch
    import transformers

    from converter.plan.analysis import analyse

    analysis = analyse(tf_checkpoints[head])
    assert analysis.plan.head == head
    config = transformers.RobertaConfig.from_pretrained(str(tf_checkpoints[head]))
    with torch.device("meta"):
        model = getattr(transformers, HEAD_CLASSES[head])(config)
    assert set(analysis.plan.target_names()) == set(model.state_dict())
