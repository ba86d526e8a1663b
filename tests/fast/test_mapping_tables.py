"""The YAML tables are validated on load; placeholders match whole digit runs only."""

from __future__ import annotations

import pytest
import yaml

from converter.errors import MappingTableError
from converter.tables import Pattern, load_table, parse_table, raw_table, table_names

MINIMAL = {
    "schema": 1,
    "architecture": "toy",
    "layout": "hf-keras",
    "model_type": "toy",
    "class_prefix": "Toy",
    "placeholders": {"L": "num_hidden_layers"},
    "groups": {"g": {"rules": [{"src": "a/layer_._{L}/k", "dst": "a.{L}.w", "shape": [2]}]}},
    "heads": {"base-model": {"class": "Model", "groups": ["g"]}},
}


def _with(**changes):
    data = yaml.safe_load(yaml.safe_dump(MINIMAL))
    data.update(changes)
    return data


def test_every_shipped_table_loads():
    assert "roberta-hf-keras" in table_names()
    for name in table_names():
        assert load_table(name).heads


def test_placeholder_matches_digits_only_and_the_whole_name():
    p = Pattern.compile("roberta/encoder/layer_._{L}/attention/self/query/kernel")
    assert p.match("roberta/encoder/layer_._10/attention/self/query/kernel") == {"L": 10}
    assert p.match("roberta/encoder/layer_._x/attention/self/query/kernel") is None
    assert p.match("roberta/encoder/layer_._01/attention/self/query/kernel") is None
    assert p.match("roberta/encoder/layer_._1/attention/self/query/kernel/extra") is None
    assert p.match("prefix/roberta/encoder/layer_._1/attention/self/query/kernel") is None


def test_unknown_key_is_an_error():
    data = _with(groups={"g": {"rules": [{"src": "a", "dst": "b", "shape": [1], "opz": []}]}})
    with pytest.raises(MappingTableError, match="unknown key"):
        parse_table("toy", data)


def test_bad_placeholder_is_an_error():
    data = _with(groups={"g": {"rules": [{"src": "a/{l}", "dst": "b", "shape": [1]}]}})
    with pytest.raises(MappingTableError, match="bad placeholder"):
        parse_table("toy", data)


def test_unknown_op_is_an_error():
    data = _with(
        groups={"g": {"rules": [{"src": "a", "dst": "b", "shape": [1], "ops": ["transpoze"]}]}}
    )
    with pytest.raises(MappingTableError, match="unknown op 'transpoze'"):
        parse_table("toy", data)


def test_duplicate_target_within_a_head_is_an_error():
    rules = [{"src": "a", "dst": "same", "shape": [1]}, {"src": "b", "dst": "same", "shape": [1]}]
    data = _with(groups={"g": {"rules": rules}})
    with pytest.raises(MappingTableError, match="produced twice"):
        parse_table("toy", data)


def test_placeholders_must_agree_between_source_and_target():
    data = _with(groups={"g": {"rules": [{"src": "a/{L}", "dst": "b", "shape": [1]}]}})
    with pytest.raises(MappingTableError, match="different placeholders"):
        parse_table("toy", data)


def test_extends_merges_groups_and_heads(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(MINIMAL))
    (tmp_path / "child.yaml").write_text(
        yaml.safe_dump(
            {
                "schema": 1,
                "extends": "base",
                "model_type": "toy2",
                "class_prefix": "Toy2",
                "heads": {"other": {"class": "ForOther", "groups": ["g"]}},
            }
        )
    )
    table = parse_table("child", raw_table("child", tmp_path))
    assert table.model_type == "toy2" and set(table.heads) == {"base-model", "other"}
    assert table.class_name("other") == "Toy2ForOther"
    assert table.groups["g"].rules[0].dst.text == "a.{L}.w"


def test_extends_cycle_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"schema": 1, "extends": "b"}))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"schema": 1, "extends": "a"}))
    with pytest.raises(MappingTableError, match="cycle"):
        raw_table("a", tmp_path)


def test_keras_suffix_placeholder_is_empty_for_0_and_underscore_n_after():
    p = Pattern.compile("backbone/layers/transformer_encoder{_L}/query_dense/vars/0")
    assert p.match("backbone/layers/transformer_encoder/query_dense/vars/0") == {"L": 0}
    assert p.match("backbone/layers/transformer_encoder_11/query_dense/vars/0") == {"L": 11}
    assert p.match("backbone/layers/transformer_encoder_0/query_dense/vars/0") is None
    assert p.match("backbone/layers/transformer_encoder_01/query_dense/vars/0") is None
    assert p.match("backbone/layers/transformer_encoderx/query_dense/vars/0") is None
    assert p.fill({"L": 0}) == "backbone/layers/transformer_encoder/query_dense/vars/0"
    assert p.fill({"L": 3}) == "backbone/layers/transformer_encoder_3/query_dense/vars/0"


def test_a_source_config_entry_needs_a_place_to_read_from():
    with pytest.raises(MappingTableError, match="needs at least one of key, tensor, count"):
        parse_table("bad", _with(source_config={"vocab_size": {"add": 2}}))
    with pytest.raises(MappingTableError, match="needs an integer axis"):
        parse_table("bad", _with(source_config={"vocab_size": {"tensor": "a/b"}}))
    with pytest.raises(MappingTableError, match="unknown key"):
        parse_table("bad", _with(source_config={"vocab_size": {"key": "x", "scale": 2}}))
