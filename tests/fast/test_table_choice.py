"""Which table converts a source: with no config naming the architecture (a TF1 checkpoint), by
fit of the tensor names — also when several tables share the layout; by --arch or model_type
otherwise."""

from __future__ import annotations

import json

import pytest

from converter.errors import InputError
from converter.tables import load_table, parse_table, select_table
from tests.fast.synthetic import listing_for
from tests.golden.expand import GOLDEN

GOLDEN_TABLES = json.loads(GOLDEN.read_text())
TF1 = "tf1-checkpoint"

# A second google-research-style TF1 table, ALBERT-like: the same `bert/embeddings/…` names as
# BERT's, one shared layer without {L}, and a projection BERT does not have.
SECOND_TF1 = {
    "schema": 1,
    "architecture": "albertish",
    "layout": TF1,
    "model_type": "albertish",
    "class_prefix": "Albertish",
    "base_model_prefix": "albertish",
    "groups": {
        "embeddings": {
            "src_prefix": "bert/embeddings/",
            "embedding": [
                {
                    "src": "word_embeddings",
                    "dst": "albertish.embeddings.word_embeddings",
                    "shape": ["vocab_size", "embedding_size"],
                },
            ],
            "layernorm": [
                {
                    "src": "LayerNorm",
                    "dst": "albertish.embeddings.LayerNorm",
                    "shape": ["embedding_size"],
                }
            ],
        },
        "encoder": {
            "src_prefix": "bert/encoder/",
            "dense": [
                {
                    "src": "embedding_hidden_mapping_in",
                    "dst": "albertish.encoder.mapping_in",
                    "shape": ["hidden_size", "embedding_size"],
                },
                {
                    "src": "transformer/group_0/inner_group_0/attention_1/self/query",
                    "dst": "albertish.encoder.group.query",
                    "shape": ["hidden_size", "hidden_size"],
                },
            ],
        },
    },
    "heads": {"base-model": {"class": "Model", "groups": ["embeddings", "encoder"], "bare": True}},
}

ALBERTISH_NAMES = [
    "bert/embeddings/word_embeddings",
    "bert/embeddings/LayerNorm/gamma",
    "bert/embeddings/LayerNorm/beta",
    "bert/encoder/embedding_hidden_mapping_in/kernel",
    "bert/encoder/embedding_hidden_mapping_in/bias",
    "bert/encoder/transformer/group_0/inner_group_0/attention_1/self/query/kernel",
    "bert/encoder/transformer/group_0/inner_group_0/attention_1/self/query/bias",
    "global_step",
]


def _bert_tf1_names(head: str = "pretraining") -> list[str]:
    return [*listing_for(GOLDEN_TABLES["bert-tf1"]["heads"][head]), "global_step", "x/adam_m"]


@pytest.fixture(scope="module")
def tf1_tables():
    second = parse_table(
        "albertish",
        {**SECOND_TF1, "ignore": [{"pattern": "global_step", "reason": "training step counter"}]},
    )
    return [load_table("bert-tf1"), second]


def test_a_config_less_bert_checkpoint_is_bert_when_a_second_tf1_table_exists(tf1_tables):
    for head in ("pretraining", "base-model", "sequence-classification"):
        chosen = select_table(TF1, None, names=_bert_tf1_names(head), tables=tf1_tables)
        assert chosen.name == "bert-tf1"


def test_a_config_less_checkpoint_of_the_second_tf1_table_is_that_table(tf1_tables):
    assert select_table(TF1, None, names=ALBERTISH_NAMES, tables=tf1_tables).name == "albertish"


def test_names_that_fit_two_tables_equally_are_refused_naming_both(tf1_tables):
    names = ["bert/embeddings/LayerNorm/gamma", "bert/embeddings/LayerNorm/beta"]
    with pytest.raises(
        InputError, match="fit several tf1-checkpoint tables equally: bert-tf1, albertish"
    ) as err:
        select_table(TF1, None, names=names, tables=tf1_tables)
    assert "--arch" in err.value.one_line()


def test_without_names_several_config_less_tables_ask_for_arch(tf1_tables):
    with pytest.raises(InputError, match="bert-tf1, albertish.*--arch"):
        select_table(TF1, None, tables=tf1_tables)


def test_arch_and_model_type_choose_among_tables_of_one_layout(tf1_tables):
    assert select_table(TF1, None, arch="albertish", tables=tf1_tables).name == "albertish"
    assert select_table(TF1, "bert", tables=tf1_tables).name == "bert-tf1"
    with pytest.raises(InputError, match="model_type 'electra' is not a supported"):
        select_table(TF1, "electra", tables=tf1_tables)


def test_shipped_tables_choose_by_arch_and_model_type():
    assert select_table("hf-keras", "roberta").name == "roberta-hf-keras"
    assert select_table("hf-keras", "camembert").name == "camembert-hf-keras"
    assert select_table("hf-keras", "roberta", arch="phobert").name == "phobert-hf-keras"
    assert select_table("hf-keras", "bert").name == "bert-hf-keras"
    for name, head in [
        ("bert-tfhub", "base-model"),
        ("bert-model-garden", "pretraining"),
        ("bert-model-garden-classifier", "sequence-classification"),
    ]:
        names = [*listing_for(GOLDEN_TABLES[name]["heads"][head]), "save_counter"]
        assert select_table("tf2", None, names=names).name == name
