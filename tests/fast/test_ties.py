"""A tied parameter is a claim the converter checks, not a label: its partner must be filled, and
the output config must let transformers tie them (the converted model's ties are checked again
when it is loaded for parity: tests/test_dtype.py). A made-up table ties a decoder to an
embedding table; the sources are synthetic listings (no frameworks, no files).
"""

from __future__ import annotations

from converter.plan.accounting import plan_head
from converter.tables import parse_table
from converter.write.output_config import output_config
from tests.fast.synthetic import source_of

VOCAB, WIDTH = 5, 3
DIMS = {"vocab_size": VOCAB, "hidden_size": WIDTH}


def _table(tie_to: str = "tied.embeddings.weight", extra_tie: dict | None = None):
    lm_head = {
        "parameter": [{"src": "lm/bias", "dst": "tied.lm.bias", "shape": ["vocab_size"]}],
        "ties": [{"dst": "tied.lm.decoder.weight", "same_as": tie_to}, *filter(None, [extra_tie])],
    }
    return parse_table(
        "tied",
        {
            "schema": 1,
            "architecture": "tied",
            "layout": "synthetic",
            "model_type": "tied",
            "class_prefix": "Tied",
            "base_model_prefix": "tied",
            "groups": {
                "embeddings": {
                    "embedding": [
                        {
                            "src": "embeddings/table",
                            "dst": "tied.embeddings",
                            "shape": ["vocab_size", "hidden_size"],
                        }
                    ]
                },
                "lm_head": lm_head,
            },
            "heads": {"masked-lm": {"class": "ForMaskedLM", "groups": ["embeddings", "lm_head"]}},
        },
    )


LISTING = {"embeddings/table": (VOCAB, WIDTH), "lm/bias": (VOCAB,)}


def test_a_tie_to_a_parameter_nothing_fills_leaves_the_tied_one_missing():
    table = _table(tie_to="tied.embeddings.weights")  # misspelt partner
    plan = plan_head(source_of(LISTING), table, "masked-lm", dict(DIMS))
    assert [m.dst for m in plan.missing] == ["tied.lm.decoder.weight"]
    assert not plan.clean


def test_a_tie_to_a_filled_parameter_is_clean_and_writes_nothing_for_the_tied_one():
    plan = plan_head(source_of(LISTING), _table(), "masked-lm", dict(DIMS))
    assert plan.clean and [t.dst for t in plan.tied] == ["tied.lm.decoder.weight"]
    assert "tied.lm.decoder.weight" not in {m.dst for m in plan.mapped}


def test_a_tie_to_a_tied_parameter_holds_through_it():
    table = _table(extra_tie={"dst": "tied.lm.decoder.bias", "same_as": "tied.lm.bias"})
    plan = plan_head(source_of(LISTING), table, "masked-lm", dict(DIMS))
    assert plan.clean and len(plan.tied) == 2


def test_an_untied_config_is_written_tied_when_the_source_model_ties():
    plan = plan_head(source_of(LISTING), _table(), "masked-lm", dict(DIMS))
    config, notes = output_config({"tie_word_embeddings": False, **DIMS}, plan)
    assert config["tie_word_embeddings"] is True
    assert any("tie_word_embeddings was false" in n for n in notes)
    untied = plan_head(source_of(LISTING), _table(), "masked-lm", dict(DIMS))
    untied.tied = []
    assert output_config({"tie_word_embeddings": False}, untied)[0]["tie_word_embeddings"] is False
