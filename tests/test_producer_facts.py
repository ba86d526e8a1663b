"""The config facts the tables state about each producer, against that producer's own installed
code: what its activation names compute (Model Garden's get_activation, keras-hub's layers), the
layer-norm epsilon its classes fix, and transformers' config-class defaults the HF-layout tables
fall back on. For google-research's TF1 code (not installable) the tables' translations are
checked against their own TF1 references, which test_bert, test_albert and test_electra check
against transformers' TF classes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from converter.tables import load_table, table_names

X = np.linspace(-6.0, 6.0, 2001, dtype=np.float32)
SAME = 1e-6  # two implementations of one function, in float32
DIFFERENT = 1e-4  # gelu's erf and tanh forms differ by up to 4.7e-4 on this range
GARDEN = ["bert-model-garden", "bert-model-garden-classifier", "bert-tfhub"]


def _transformers(name: str) -> np.ndarray:
    import torch
    from transformers.activations import ACT2FN

    return ACT2FN[name](torch.from_numpy(X)).numpy()


def _gap(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float32) - b)))


@pytest.mark.parametrize("name", GARDEN)
def test_model_garden_activation_names_are_written_as_what_model_garden_computes(name):
    import tensorflow as tf
    from official.modeling import tf_utils

    translations = load_table(name).source_config["hidden_act"].values
    assert translations
    for theirs, ours in translations.items():
        computed = tf_utils.get_activation(theirs)(tf.constant(X))
        assert _gap(computed, _transformers(ours)) < SAME, (theirs, ours)
        # the name means another function in transformers: why it is translated at all
        assert _gap(computed, _transformers(theirs)) > DIFFERENT, theirs


def _garden_encoders():
    """Model Garden's encoders as its checkpoints and exports build them, with no activation
    or epsilon given: BertEncoderV2, BertEncoder, and export_tfhub_lib's for a BERT config."""
    import tensorflow as tf
    from official.legacy.bert import configs
    from official.nlp.modeling import networks
    from official.nlp.tools import export_tfhub_lib

    dims = dict(vocab_size=50, hidden_size=16, num_attention_heads=2, type_vocab_size=2)
    config = configs.BertConfig(
        num_hidden_layers=1, intermediate_size=20, max_position_embeddings=8, **dims
    )
    encoders = [
        networks.BertEncoderV2(num_layers=1, max_sequence_length=8, inner_dim=20, **dims),
        networks.BertEncoder(num_layers=1, max_sequence_length=8, intermediate_size=20, **dims),
        export_tfhub_lib.get_bert_encoder(config),  # config.hidden_act: BertConfig's "gelu"
    ]
    ids = tf.ones((1, 4), tf.int32)
    for encoder in encoders:
        encoder(dict(input_word_ids=ids, input_mask=ids, input_type_ids=ids * 0))
    return encoders


@pytest.mark.parametrize("name", GARDEN)
def test_model_garden_encoders_fix_the_defaults_the_table_writes(name):
    import tensorflow as tf

    defaults = load_table(name).config_defaults
    for encoder in _garden_encoders():
        norms = [encoder._embedding_norm_layer]
        for block in encoder._transformer_layers:
            norms += [block._attention_layer_norm, block._output_layer_norm]
            computed = block._intermediate_activation_layer(tf.constant(X))
            assert _gap(computed, _transformers(defaults["hidden_act"])) < SAME
        assert {n.epsilon for n in norms} == {defaults["layer_norm_eps"]}


def test_keras_hub_roberta_backbone_fixes_the_defaults_the_table_writes():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras_hub

    defaults = load_table("roberta-keras-hub").config_defaults
    backbone = keras_hub.models.RobertaBackbone(
        vocabulary_size=50,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=20,
        max_sequence_length=8,
    )
    norms = [backbone.embeddings_layer_norm]
    for layer in backbone.transformer_layers:
        norms += [layer._self_attention_layer_norm, layer._feedforward_layer_norm]
        assert _gap(layer.activation(X), _transformers(defaults["hidden_act"])) < SAME
    assert {n.epsilon for n in norms} == {defaults["layer_norm_eps"]}
    assert set(backbone.input) == {"token_ids", "padding_mask"}  # no token types at all
    assert defaults["type_vocab_size"] == 1


HF_TABLES = [n for n in table_names() if load_table(n).layout == "hf-keras"]


@pytest.mark.parametrize("name", HF_TABLES)
def test_hf_layout_defaults_are_the_config_class_defaults_they_say_they_are(name):
    """A config.json missing a key builds the TF reference with the class default; the output
    config must state that same value."""
    import transformers

    table = load_table(name)
    claimed = [k for k, why in table.config_reasons.items() if "Config's default" in why]
    assert claimed, name
    config = getattr(transformers, table.class_prefix + "Config")()
    for key in claimed:
        assert getattr(config, key) == table.config_defaults[key], (name, key)


@pytest.mark.parametrize("name", ["bert-tf1", "albert-tf1", "electra-tf1"])
def test_tf1_tables_write_what_their_reference_computes(name):
    """Each activation name the TF1 reference knows, as the table writes it for transformers,
    computes what the reference runs; the default epsilon is the reference's."""
    import tensorflow as tf

    from converter.verify.tf1_encoder import _activations

    table = load_table(name)
    reference = table.reference
    ops = _activations(tf)
    entry = table.source_config.get("hidden_act")
    translations = entry.values if entry is not None else {}
    for theirs, op in reference["activations"].items():
        ours = translations.get(theirs, theirs)
        assert _gap(ops[op](tf.constant(X)), _transformers(ours)) < SAME, (theirs, ours)
    if "hidden_act" in table.config_defaults:  # a config-less release (ELECTRA)
        default = table.config_defaults["hidden_act"]
        op = ops[reference["activations"][default]]
        assert _gap(op(tf.constant(X)), _transformers(default)) < SAME
    assert table.config_defaults["layer_norm_eps"] == reference["layer_norm_eps"]
