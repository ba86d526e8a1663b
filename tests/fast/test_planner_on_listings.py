"""Every head of every shipped table accounts for a synthetic listing of exactly the tensors it
names — no files, no frameworks: the planner and the tables alone, in milliseconds."""

from __future__ import annotations

import json

import pytest

from converter.plan.accounting import plan_head
from converter.plan.heads import choose_head
from converter.tables import load_table, parse_table
from tests.fast.synthetic import DIMS, listing_for, source_of
from tests.golden.expand import GOLDEN

GOLDEN_TABLES = json.loads(GOLDEN.read_text())
CASES = [(t, h) for t in sorted(GOLDEN_TABLES) for h in sorted(GOLDEN_TABLES[t]["heads"])]


@pytest.mark.parametrize(("table_name", "head"), CASES)
def test_each_head_accounts_for_every_tensor_it_names(table_name, head):
    table = load_table(table_name)
    golden = GOLDEN_TABLES[table_name]
    listing = listing_for(golden["heads"][head], DIMS, golden["placeholders"])
    plan = plan_head(source_of(listing), table, head, dict(DIMS))
    assert plan.clean, (plan.unexpected, plan.missing, plan.mismatched)
    placed = {m.src for m in plan.mapped} | {d.src for d in plan.duplicates}
    assert placed == set(listing)


def test_a_stray_tensor_is_unexpected_and_an_optimizer_slot_is_ignored_with_its_reason():
    table = load_table("bert-tf1")
    listing = listing_for(GOLDEN_TABLES["bert-tf1"]["heads"]["base-model"])
    listing["bert/encoder/layer_0/attention/self/query/kernel/adam_m"] = (8, 8)
    listing["bert/encoder/layer_0/attention/self/querry/kernel"] = (8, 8)
    plan = plan_head(source_of(listing), table, "base-model", dict(DIMS))
    assert [u.src for u in plan.unexpected] == ["bert/encoder/layer_0/attention/self/querry/kernel"]
    assert [i.reason for i in plan.ignored] == [
        "AdamWeightDecayOptimizer first-moment slot (optimization.py), not a model weight"
    ]


def test_a_layer_beyond_the_configured_count_is_unexpected():
    table = load_table("roberta-hf-keras")
    listing = listing_for(GOLDEN_TABLES["roberta-hf-keras"]["heads"]["base-model"])
    listing["roberta/encoder/layer_._2/output/dense/bias"] = (8,)
    plan = plan_head(source_of(listing), table, "base-model", dict(DIMS))
    assert [u.src for u in plan.unexpected] == ["roberta/encoder/layer_._2/output/dense/bias"]


def test_the_head_is_detected_from_the_tensors_it_holds():
    table = load_table("bert-hf-keras")
    listing = listing_for(GOLDEN_TABLES["bert-hf-keras"]["heads"]["pretraining"])
    plan = choose_head(source_of(listing), table, dict(DIMS), None)
    assert plan.head == "pretraining"


TWO_MODELS = {
    "schema": 1,
    "architecture": "twin",
    "layout": "tf1-checkpoint",
    "model_type": "twin",
    "class_prefix": "Twin",
    "base_model_prefix": "twin",
    "placeholders": {"L": "num_hidden_layers"},
    "groups": {
        "discriminator": {
            "dense": [
                {
                    "src": "twin/layer_{L}/dense",
                    "dst": "twin.layer.{L}.dense",
                    "shape": ["hidden_size", "hidden_size"],
                }
            ]
        },
        "generator": {
            "dense": [
                {
                    "src": "generator/layer_{L}/dense",
                    "dst": "twin.layer.{L}.dense",
                    "shape": ["hidden_size", "hidden_size"],
                }
            ]
        },
    },
    "heads": {
        "pretraining": {
            "class": "ForPreTraining",
            "groups": ["discriminator"],
            "ignore": [{"pattern": "generator/**", "reason": "the generator, another model"}],
        },
        "masked-lm": {
            "class": "ForMaskedLM",
            "groups": ["generator"],
            "ignore": [{"pattern": "twin/**", "reason": "the discriminator, another model"}],
            "source_config": {"hidden_size": {"tensor": "generator/layer_0/dense/bias", "axis": 0}},
        },
    },
    "source_config": {"hidden_size": {"tensor": "twin/layer_0/dense/bias", "axis": 0}},
    "ignore": [{"pattern": "global_step", "reason": "training step counter"}],
}


def test_a_head_accounts_for_the_other_models_tensors_by_its_own_ignore_rules():
    table = parse_table("twin", TWO_MODELS)
    listing = {
        "twin/layer_0/dense/kernel": (8, 8),
        "twin/layer_0/dense/bias": (8,),
        "generator/layer_0/dense/kernel": (4, 4),
        "generator/layer_0/dense/bias": (4,),
        "global_step": (),
    }
    dims = dict(DIMS, num_hidden_layers=1)
    disc = plan_head(source_of(listing), table, "pretraining", dims)
    assert disc.clean and {m.src for m in disc.mapped} == {
        "twin/layer_0/dense/kernel",
        "twin/layer_0/dense/bias",
    }
    assert {i.src: i.reason for i in disc.ignored} == {
        "generator/layer_0/dense/kernel": "the generator, another model",
        "generator/layer_0/dense/bias": "the generator, another model",
        "global_step": "training step counter",
    }
    gen = plan_head(source_of(listing), table, "masked-lm", dict(dims, hidden_size=4))
    assert gen.clean and {i.reason for i in gen.ignored} == {
        "the discriminator, another model",
        "training step counter",
    }


def test_a_heads_source_config_overrides_the_tables():
    from converter.plan.source_config import source_hf_config

    table = parse_table("twin", TWO_MODELS)
    source = source_of({"twin/layer_0/dense/bias": (8,), "generator/layer_0/dense/bias": (4,)})
    assert source_hf_config(source, table)["hidden_size"] == 8
    assert source_hf_config(source, table, "pretraining")["hidden_size"] == 8
    assert source_hf_config(source, table, "masked-lm")["hidden_size"] == 4


def test_a_group_applies_only_when_its_config_keys_differ():
    """ElectraModel builds embeddings_project only when embedding_size != hidden_size."""
    data = {
        **TWO_MODELS,
        "groups": {
            **TWO_MODELS["groups"],
            "projection": {
                "when_differ": ["embedding_size", "hidden_size"],
                "dense": [
                    {
                        "src": "twin/project",
                        "dst": "twin.project",
                        "shape": ["hidden_size", "embedding_size"],
                    }
                ],
            },
        },
        "heads": {
            "pretraining": {"class": "ForPreTraining", "groups": ["discriminator", "projection"]}
        },
    }
    table = parse_table("twin", data)
    layer = {"twin/layer_0/dense/kernel": (8, 8), "twin/layer_0/dense/bias": (8,)}
    same = dict(DIMS, num_hidden_layers=1, embedding_size=8)
    plan = plan_head(source_of(layer), table, "pretraining", same)
    assert plan.clean and len(plan.mapped) == 2
    narrow = dict(same, embedding_size=4)
    plan = plan_head(source_of(layer), table, "pretraining", narrow)
    assert [m.dst for m in plan.missing] == ["twin.project.bias", "twin.project.weight"]
    projected = {**layer, "twin/project/kernel": (4, 8), "twin/project/bias": (8,)}
    assert plan_head(source_of(projected), table, "pretraining", narrow).clean
