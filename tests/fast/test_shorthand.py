"""Shorthands name a layer once; they expand to the same per-tensor rules the long form writes,
with PyTorch names and shapes from the shared vocabulary."""

from __future__ import annotations

import pytest

from converter.errors import MappingTableError
from converter.tables import parse_table
from converter.tables.ops import Flatten, MergeHeadsIn, Transpose


def _table(groups, head_groups=None, **top):
    data = {
        "schema": 1,
        "architecture": "toy",
        "layout": "toy-layout",
        "model_type": "toy",
        "class_prefix": "Toy",
        "base_model_prefix": "toy",
        "vocabulary": "bert-family",
        "placeholders": {"L": "num_hidden_layers"},
        "groups": groups,
        "heads": {
            "base-model": {"class": "Model", "groups": head_groups or list(groups), "bare": True}
        },
        **top,
    }
    return parse_table("toy", data)


def _rules(table):
    return {
        r.src.text: (r.dst.text, tuple(type(o) for o in r.ops), r.shape)
        for r in table.compiled("base-model").rules
    }


def test_dense_is_a_transposed_kernel_and_a_bias_with_the_roles_shapes():
    table = _table({"g": {"src_prefix": "m/layer_{L}/", "dense": {"intermediate": "ffn/in"}}})
    assert _rules(table) == {
        "m/layer_{L}/ffn/in/kernel": (
            "toy.encoder.layer.{L}.intermediate.dense.weight",
            (Transpose,),
            ("intermediate_size", "hidden_size"),
        ),
        "m/layer_{L}/ffn/in/bias": (
            "toy.encoder.layer.{L}.intermediate.dense.bias",
            (),
            ("intermediate_size",),
        ),
    }


def test_layernorm_gamma_and_beta_become_weight_and_bias():
    table = _table({"g": {"layernorm": {"embeddings_norm": "emb/LayerNorm"}}})
    assert _rules(table) == {
        "emb/LayerNorm/gamma": ("toy.embeddings.LayerNorm.weight", (), ("hidden_size",)),
        "emb/LayerNorm/beta": ("toy.embeddings.LayerNorm.bias", (), ("hidden_size",)),
    }


def test_keras3_params_name_an_einsum_layers_tensors_vars_0_and_1():
    table = _table({"g": {"einsum_in": {"query": "enc{_L}/q"}}}, source_params="keras3")
    assert _rules(table) == {
        "enc{_L}/q/vars/0": (
            "toy.encoder.layer.{L}.attention.self.query.weight",
            (MergeHeadsIn,),
            ("hidden_size", "hidden_size"),
        ),
        "enc{_L}/q/vars/1": (
            "toy.encoder.layer.{L}.attention.self.query.bias",
            (Flatten,),
            ("hidden_size",),
        ),
    }


def test_a_layer_outside_the_vocabulary_is_written_with_its_own_name_and_shape():
    layer = {"src": "head/proj", "dst": "proj", "shape": ["hidden_size", "embedding_size"]}
    table = _table({"g": {"dense": [layer]}})
    assert _rules(table)["head/proj/kernel"] == (
        "proj.weight",
        (Transpose,),
        ("hidden_size", "embedding_size"),
    )
    with pytest.raises(MappingTableError, match="needs a shape"):
        _table({"g": {"dense": [{"src": "head/proj", "dst": "proj"}]}})


def test_long_form_rules_and_shorthand_live_in_one_group():
    long = {"src": "bias_of_all", "dst": "toy.bias", "shape": ["hidden_size"]}
    table = _table({"g": {"parameter": {"mlm_bias": "out_bias"}, "rules": [long]}})
    assert set(_rules(table)) == {"out_bias", "bias_of_all"}
    assert _rules(table)["out_bias"] == ("cls.predictions.bias", (), ("vocab_size",))


def test_an_unknown_role_names_the_closest_one():
    with pytest.raises(MappingTableError, match=r"unknown role 'qeury' \(did you mean 'query'\?\)"):
        _table({"g": {"dense": {"qeury": "q"}}})


def test_an_unknown_kind_is_an_unknown_key_naming_the_closest():
    with pytest.raises(
        MappingTableError,
        match=r"unknown key 'layer_norm' \(did you mean "
        r"'layernorm'\?\)",
    ):
        _table({"g": {"layer_norm": {"embeddings_norm": "LayerNorm"}}})


def test_an_unknown_params_style_is_an_error():
    with pytest.raises(MappingTableError, match="source_params 'keras4' is not one of"):
        _table({"g": {"dense": {"pooler": "p"}}}, source_params="keras4")


def test_included_names_take_the_tables_source_scope():
    table = _table(
        {},
        ["word_embeddings", "embeddings", "encoder", "pooler"],
        include=["names-model-garden"],
        source_scope="model/_network",
    )
    rules = _rules(table)
    assert rules["model/_network/_pooler_layer/kernel"][0] == "toy.pooler.dense.weight"
    assert "model/_network/_transformer_layers/{L}/_attention_layer/_query_dense/bias" in rules


def test_a_groups_prefixes_shorten_layers_outside_the_vocabulary():
    group = {
        "src_prefix": "m/groups_._{G}/",
        "dst_prefix": "m.groups.{G}.",
        "dense": [{"src": "ffn", "dst": "ffn", "shape": ["intermediate_size", "hidden_size"]}],
        "layernorm": [{"src": "norm", "dst": "norm", "shape": ["hidden_size"]}],
    }
    table = _table({"g": group}, placeholders={"G": "num_hidden_groups"})
    assert _rules(table) == {
        "m/groups_._{G}/ffn/kernel": (
            "m.groups.{G}.ffn.weight",
            (Transpose,),
            ("intermediate_size", "hidden_size"),
        ),
        "m/groups_._{G}/ffn/bias": ("m.groups.{G}.ffn.bias", (), ("intermediate_size",)),
        "m/groups_._{G}/norm/gamma": ("m.groups.{G}.norm.weight", (), ("hidden_size",)),
        "m/groups_._{G}/norm/beta": ("m.groups.{G}.norm.bias", (), ("hidden_size",)),
    }
