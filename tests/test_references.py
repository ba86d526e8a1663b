"""Tables declare their TF reference (`reference:` block), and the generic TF1 reference encoder
computes what transformers' TF classes compute, for the features other producers need: an
embedding→hidden projection (ELECTRA, ALBERT), one layer shared by all layers (ALBERT), two named
encoders over one embedding table chosen per head (ELECTRA TF1), and head outputs as op chains.

The synthetic tests take a transformers TF model with random weights, rename its weights to the
TF1 producer's variable names (the renaming is the test's own), and require the reference,
reading those names through the declared roles, to match the TF class on the same inputs.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from converter.capabilities import VERIFY_RUNNER_MODULES
from converter.errors import MappingTableError
from converter.tables import load_table, parse_table, table_names
from converter.tables.reference import RUNNERS, head_facts

DOCTOR_ONLY = {"fairseq"}  # layouts tf2pt only diagnoses; nothing to verify against


def _minimal_table(reference: dict, heads: tuple[str, ...] = ("base-model",)) -> dict:
    return {
        "schema": 1,
        "architecture": "synthetic",
        "layout": "tf1-checkpoint",
        "model_type": "synthetic",
        "class_prefix": "Bert",
        "groups": {"none": {}},
        "heads": {h: {"class": "Model", "groups": ["none"]} for h in heads},
        "reference": reference,
    }


def test_every_verifiable_table_declares_a_registered_reference_runner():
    for name in table_names():
        table = load_table(name)
        if table.layout in DOCTOR_ONLY:
            continue
        runner = table.reference.get("runner")
        assert runner in RUNNERS, name
        assert runner in VERIFY_RUNNER_MODULES, name


def test_every_runner_a_table_may_name_has_an_implementing_class():
    import importlib

    from converter.verify.runners import RUNNER_CLASSES

    assert set(RUNNER_CLASSES) == set(RUNNERS)
    for module, cls in RUNNER_CLASSES.values():
        assert hasattr(importlib.import_module(module, "converter.verify"), cls), (module, cls)


def test_a_table_naming_an_unknown_runner_is_an_error_naming_the_file():
    with pytest.raises(MappingTableError) as caught:
        parse_table("broken", _minimal_table({"runner": "tf-magic"}))
    message = str(caught.value)
    assert message.startswith("mappings/broken.yaml: reference: runner 'tf-magic'")
    assert "tf1-encoder" in message and "transformers-tf" in message


def test_variants_inherit_the_reference_and_may_change_only_its_runner():
    roberta = load_table("roberta-hf-keras").reference
    assert load_table("camembert-hf-keras").reference == roberta
    saved = load_table("roberta-keras-save-weights").reference
    assert saved["runner"] == "keras-save-weights" and roberta["runner"] == "transformers-tf"
    assert head_facts(saved, "multiple-choice").input_shape == "choices"
    assert head_facts(saved, "sequence-classification").input_shape == "sequence"


def test_choice_shaped_input_is_a_head_fact_of_the_table():
    table = load_table("bert-hf-keras")
    shapes = {h: head_facts(table.reference, h).input_shape for h in table.heads}
    assert {h for h, s in shapes.items() if s == "choices"} == {"multiple-choice"}


BERT_BLOCK = load_table("bert-tf1").reference


@pytest.mark.parametrize(
    "damage, complaint",
    [
        (lambda b: b["heads"]["base-model"]["outputs"]["pooler_output"].append("pool"), "'pool'"),
        (lambda b: b["heads"]["base-model"].update(encoder="generator"), "'generator'"),
        (lambda b: b["encoders"]["bert"]["roles"].pop("query"), "roles: needs"),
        (lambda b: b.pop("layer_norm_eps"), "needs ['layer_norm_eps']"),
        (lambda b: b["activations"].update(gelu="erf"), "activations"),
        (lambda b: b.update(hidden_states=[]), "unknown key(s) ['hidden_states']"),
    ],
)
def test_a_malformed_tf1_encoder_block_is_refused_where_it_is_wrong(damage, complaint):
    block = copy.deepcopy(BERT_BLOCK)
    damage(block)
    heads = ("base-model", "pretraining", "sequence-classification")
    with pytest.raises(MappingTableError, match=re.escape(complaint)):
        parse_table("damaged", _minimal_table(block, heads))


# --- the generic TF1 encoder against transformers' TF classes ---------------------------------

DIMS = {
    "vocab_size": 50,
    "embedding_size": 8,
    "max_position_embeddings": 24,
    "type_vocab_size": 2,
    "intermediate_size": 20,
    "num_attention_heads": 2,
    "pad_token_id": 0,
}

ALBERT_REFERENCE = """
runner: tf1-encoder
layer_norm_eps: 1.0e-12
mask_adder: -10000.0
activations: {gelu: gelu_tanh}
embeddings:
  word: bert/embeddings/word_embeddings
  position: bert/embeddings/position_embeddings
  token_type: bert/embeddings/token_type_embeddings
  layer_norm: bert/embeddings/LayerNorm
encoders:
  albert:
    project: bert/encoder/embedding_hidden_mapping_in
    layer: bert/encoder/transformer/group_0/inner_group_0
    roles:
      query: attention_1/self/query
      key: attention_1/self/key
      value: attention_1/self/value
      attention_output: attention_1/output/dense
      attention_layer_norm: LayerNorm
      intermediate: ffn_1/intermediate/dense
      output: ffn_1/intermediate/output/dense
      output_layer_norm: LayerNorm_1
heads:
  pretraining:
    outputs:
      prediction_logits:
        - {dense: cls/predictions/transform/dense}
        - {activation: hidden_act}
        - {layer_norm: cls/predictions/transform/LayerNorm}
        - {matmul_transposed: bert/embeddings/word_embeddings}
        - {add_bias: cls/predictions/output_bias}
      sop_logits:
        - first_token
        - {dense: bert/pooler/dense}
        - {activation: tanh}
        - {matmul_transposed: cls/seq_relationship/output_weights}
        - {add_bias: cls/seq_relationship/output_bias}
"""

# transformers' ALBERT layer of group N (albert_layer_groups.N.albert_layers.0); its TF1 scope is
# bert/encoder/transformer/group_N/inner_group_0
LAYER = r"albert/encoder/albert_layer_groups_\._(\d+)/albert_layers_\._0/"
ALBERT_NAMES = [  # transformers' TFAlbert* name → google-research/albert's (T: stored transposed)
    (r"albert/embeddings/(\w+)_embeddings/(weight|embeddings)", r"bert/embeddings/\1_embeddings"),
    (r"albert/embeddings/LayerNorm/(\w+)", r"bert/embeddings/LayerNorm/\1"),
    (r"albert/(encoder/embedding_hidden_mapping_in/\w+)", r"bert/\1"),
    (LAYER + r"attention/(query|key|value)/(\w+)", r"G\1/attention_1/self/\2/\3"),
    (LAYER + r"attention/dense/(\w+)", r"G\1/attention_1/output/dense/\2"),
    (LAYER + r"attention/LayerNorm/(\w+)", r"G\1/LayerNorm/\2"),
    (LAYER + r"ffn/(\w+)", r"G\1/ffn_1/intermediate/dense/\2"),
    (LAYER + r"ffn_output/(\w+)", r"G\1/ffn_1/intermediate/output/dense/\2"),
    (LAYER + r"full_layer_layer_norm/(\w+)", r"G\1/LayerNorm_1/\2"),
    (r"albert/pooler/(\w+)", r"bert/pooler/dense/\1"),
    (r"predictions/decoder/bias", r"cls/predictions/output_bias"),
    (r"predictions/(dense|LayerNorm)/(\w+)", r"cls/predictions/transform/\1/\2"),
    (r"sop_classifier/classifier/kernel", r"T:cls/seq_relationship/output_weights"),
    (r"sop_classifier/classifier/bias", r"cls/seq_relationship/output_bias"),
]

ALBERT_GROUP = r"bert/encoder/transformer/group_\1/inner_group_0/"

ELECTRA_REFERENCE = """
runner: tf1-encoder
layer_norm_eps: 1.0e-12
mask_adder: -10000.0
activations: {gelu: gelu_tanh}
embeddings:
  word: electra/embeddings/word_embeddings
  position: electra/embeddings/position_embeddings
  token_type: electra/embeddings/token_type_embeddings
  layer_norm: electra/embeddings/LayerNorm
encoders:
  discriminator:
    project: electra/embeddings_project
    layer: "electra/encoder/layer_{L}"
    roles: &roles
      query: attention/self/query
      key: attention/self/key
      value: attention/self/value
      attention_output: attention/output/dense
      attention_layer_norm: attention/output/LayerNorm
      intermediate: intermediate/dense
      output: output/dense
      output_layer_norm: output/LayerNorm
  generator:
    project: generator/embeddings_project
    layer: "generator/encoder/layer_{L}"
    layers_from: generator_layers
    heads_from: generator_heads
    roles: *roles
heads:
  pretraining:
    encoder: discriminator
    outputs:
      logits:
        - {dense: discriminator_predictions/dense}
        - {activation: hidden_act}
        - {dense: discriminator_predictions/dense_1}
        - squeeze_last
  masked-lm:
    encoder: generator
    outputs:
      logits:
        - {dense: generator_predictions/dense}
        - {activation: gelu_exact}
        - {layer_norm: generator_predictions/LayerNorm}
        - {matmul_transposed: electra/embeddings/word_embeddings}
        - {add_bias: generator_predictions/output_bias}
"""

ELECTRA_NAMES = {  # per model: transformers' TFElectra* name → google-research/electra's
    "discriminator": [
        (r"electra/embeddings/(\w+_embeddings)/(weight|embeddings)", r"electra/embeddings/\1"),
        (r"electra/embeddings/LayerNorm/(\w+)", r"\g<0>"),
        (r"electra/embeddings_project/(\w+)", r"\g<0>"),
        (r"electra/encoder/layer_\._(\d+)/(.*)", r"electra/encoder/layer_\1/\2"),
        (r"discriminator_predictions/dense/(\w+)", r"\g<0>"),
        (r"(discriminator_predictions)/dense_prediction/(\w+)", r"\1/dense_1/\2"),
    ],
    "generator": [
        (r"electra/embeddings_project/(\w+)", r"generator/embeddings_project/\1"),
        (r"electra/encoder/layer_\._(\d+)/(.*)", r"generator/encoder/layer_\1/\2"),
        (r"generator_predictions/(dense|LayerNorm)/(\w+)", r"\g<0>"),
        (r"generator_lm_head/bias", r"generator_predictions/output_bias"),
    ],
}  # fmt: skip


def _randomize(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.2, w.shape).astype(np.float32) for w in model.weights])


def _renamed(model, rules: list[tuple[str, str]]) -> dict[str, np.ndarray]:
    """The model's weights under the TF1 names the rules give them (unmatched ones dropped)."""
    out = {}
    for weight in model.weights:
        name = weight.name.split("/", 1)[1].removesuffix(":0")
        for pattern, replacement in rules:
            if re.fullmatch(pattern, name):
                new = re.sub(r"^G(\d+)/", ALBERT_GROUP, re.sub(pattern, replacement, name))
                value = weight.numpy()
                if new.startswith("T:"):
                    new, value = new[2:], value.T
                out[new] = value
    return out


def _reference(block: str, tensors: dict[str, np.ndarray], dims: dict, head: str):
    from converter.plan.accounting import Plan
    from converter.readers.base import Source, SourceTensor
    from converter.verify.runners import declared_runner

    reference = yaml.safe_load(block)
    table = parse_table("synthetic", _minimal_table(reference, tuple(reference["heads"])))
    source = Source(
        path=Path("synthetic"),
        layout="tf1-checkpoint",
        config={"hidden_act": "gelu"},  # what the producer's config says; the table maps it
        config_path=None,
        tensors=[
            SourceTensor(n, a.shape, a.dtype, lambda index, a=a: a) for n, a in tensors.items()
        ],
        weight_files=[],
    )
    plan = Plan(table=table, head=head, dims=dims)
    return declared_runner(plan)(source, plan)


def _assert_same(ours: dict, theirs, names: dict[str, str], batch) -> None:
    mask = batch.flat_mask()
    hidden = theirs.hidden_states
    assert len([k for k in ours if k.startswith("hidden_states")]) == len(hidden)
    for i, h in enumerate(hidden):
        ours_h = ours[f"hidden_states[{i}]"]
        np.testing.assert_allclose(ours_h[mask], np.asarray(h)[mask], atol=1e-5)
    for our_name, their_name in names.items():
        np.testing.assert_allclose(ours[our_name], np.asarray(theirs[their_name]), atol=1e-5)


@pytest.mark.parametrize(
    "groups, layer_scope",
    [
        (1, "bert/encoder/transformer/group_0/inner_group_0"),  # one layer shared by all
        (2, "bert/encoder/transformer/group_{G}/inner_group_0"),  # layer L runs group L·2÷3
    ],
)
def test_tf1_reference_with_shared_layers_and_a_projection_equals_tf_albert(groups, layer_scope):
    import transformers

    from converter.verify.inputs import make_inputs

    dims = {**DIMS, "hidden_size": 16, "num_hidden_layers": 3, "hidden_act": "gelu_new"}
    dims["num_hidden_groups"] = groups
    config = transformers.AlbertConfig(**dims)
    model = transformers.TFAlbertForPreTraining(config)
    model(model.dummy_inputs)
    _randomize(model, seed=7)
    tensors = _renamed(model, ALBERT_NAMES)
    block = ALBERT_REFERENCE.replace("bert/encoder/transformer/group_0/inner_group_0", layer_scope)
    runner = _reference(block, tensors, dims, "pretraining")
    for batch in make_inputs(dims, 0).batches:
        ours = runner.run(batch)
        theirs = model(**batch.as_dict(), output_hidden_states=True, training=False)
        names = {"prediction_logits": "prediction_logits", "sop_logits": "sop_logits"}
        _assert_same(ours, theirs, names, batch)
    # three layers read the shared layers' 16 variables per group, nothing more
    assert sum(name.startswith("bert/encoder/transformer/") for name in runner.v) == 16 * groups


@pytest.mark.parametrize("embedding_size", [8, 16])  # 16: as wide as the discriminator
def test_tf1_reference_chooses_its_encoder_per_head_over_shared_embeddings_equals_tf_electra(
    embedding_size,
):
    """A projection is applied where the checkpoint holds one: ELECTRA stores none when the
    embeddings are as wide as the encoder (here the discriminator at embedding_size 16)."""
    import transformers

    from converter.verify.inputs import make_inputs

    dims = {**DIMS, "hidden_size": 16, "num_hidden_layers": 2, "hidden_act": "gelu_new"}
    dims |= {"generator_layers": 1, "generator_heads": 2, "embedding_size": embedding_size}
    discriminator = transformers.TFElectraForPreTraining(transformers.ElectraConfig(**dims))
    generator_dims = {**dims, "hidden_size": 12, "num_hidden_layers": 1, "intermediate_size": 24}
    generator = transformers.TFElectraForMaskedLM(transformers.ElectraConfig(**generator_dims))
    for seed, model in enumerate((discriminator, generator)):
        model(model.dummy_inputs)
        _randomize(model, seed=seed)
    generator.electra.embeddings.set_weights(discriminator.electra.embeddings.get_weights())
    tensors = _renamed(discriminator, ELECTRA_NAMES["discriminator"])
    tensors |= _renamed(generator, ELECTRA_NAMES["generator"])
    assert ("electra/embeddings_project/kernel" in tensors) == (embedding_size != 16)
    for head, model in (("pretraining", discriminator), ("masked-lm", generator)):
        runner = _reference(ELECTRA_REFERENCE, tensors, dims, head)
        for batch in make_inputs(dims, 0).batches:
            ours = runner.run(batch)
            theirs = model(**batch.as_dict(), output_hidden_states=True, training=False)
            _assert_same(ours, theirs, {"logits": "logits"}, batch)
