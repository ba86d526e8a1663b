"""One validator for every YAML file tf2pt reads: misspelt and unknown keys, wrong types and
malformed entries are errors naming the file, the place and the closest allowed key."""

from __future__ import annotations

import pytest
import yaml

from converter.errors import MappingTableError
from converter.tables import load_table, load_yaml, parse_table, raw_table, table_names, tables_dir
from converter.tables.load import kinds_of
from converter.tables.schemas import (
    FAIRSEQ,
    HYPOTHESES,
    KINDS,
    MODEL_CARD,
    REPAIRS,
    TOKENIZER_FAMILIES,
    VOCABULARY,
    names_schema,
)
from converter.tokenizers.families import FAMILIES_FILE, load_families

DOCTOR = tables_dir() / "doctor"


def _shared_schema(path):
    if path.stem == "kinds":
        return KINDS
    if path.stem.startswith("names-"):
        return names_schema(tuple(kinds_of().kinds))
    if path.stem == "hypotheses":
        return HYPOTHESES
    if path.stem == "model-card":
        return MODEL_CARD
    return VOCABULARY


def test_every_shipped_yaml_file_passes_the_validator():
    shared = sorted((tables_dir() / "shared").glob("*.yaml"))
    assert {p.stem for p in shared} >= {"kinds", "bert-family", "names-hf-keras"}
    for path in shared:
        load_yaml(path, _shared_schema(path))
    load_yaml(DOCTOR / "repairs.yaml", REPAIRS)
    load_yaml(DOCTOR / "fairseq.yaml", FAIRSEQ)
    load_yaml(tables_dir() / FAMILIES_FILE, TOKENIZER_FAMILIES)
    assert len(table_names()) >= 15
    for name in table_names():
        assert load_table(name).heads


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_misspelt_repairs_key_names_the_file_the_key_and_the_closest_allowed_one(tmp_path):
    text = (DOCTOR / "repairs.yaml").read_text().replace("drop_with_head:", "drop_with_haed:")
    path = _write(tmp_path, "repairs.yaml", text)
    with pytest.raises(MappingTableError) as err:
        load_yaml(path, REPAIRS)
    message = err.value.one_line()
    assert str(path) in message
    assert "unknown key 'drop_with_haed' (did you mean 'drop_with_head'?)" in message


def test_a_repair_prefix_that_is_not_a_string_is_an_error(tmp_path):
    text = (DOCTOR / "repairs.yaml").read_text().replace('prefix: "module."', "prefix: [module]")
    path = _write(tmp_path, "repairs.yaml", text)
    with pytest.raises(
        MappingTableError, match=r"repairs\[0\]\.prefix: expected a string, got list"
    ):
        load_yaml(path, REPAIRS)


def test_a_fairseq_config_entry_needs_an_arg_or_a_tensor(tmp_path):
    text = (
        (DOCTOR / "fairseq.yaml")
        .read_text()
        .replace("num_hidden_layers: {arg: encoder_layers}", "num_hidden_layers: {axis: 0}")
    )
    path = _write(tmp_path, "fairseq.yaml", text)
    with pytest.raises(MappingTableError, match=r"config\.num_hidden_layers: needs arg or tensor"):
        load_yaml(path, FAIRSEQ)


def test_a_misspelt_table_key_is_named_with_the_closest_allowed_key(tmp_path):
    text = (tables_dir() / "bert-tf1.yaml").read_text().replace("placeholders:", "placeholder:")
    _write(tmp_path, "bert-tf1.yaml", text)
    with pytest.raises(
        MappingTableError,
        match=r"bert-tf1.yaml: unknown key 'placeholder' "
        r"\(did you mean 'placeholders'\?\)",
    ):
        raw_table("bert-tf1", tmp_path)


def test_a_misspelt_head_key_is_an_error_not_ignored():
    data = yaml.safe_load((tables_dir() / "bert-tf1.yaml").read_text())
    data["heads"]["base-model"]["ingore"] = []
    with pytest.raises(
        MappingTableError,
        match=r"heads\.base-model: unknown key 'ingore' "
        r"\(did you mean 'ignore'\?\)",
    ):
        parse_table("bert-tf1", data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"position_offset": "two"}, r"position_offset: expected an integer, got str 'two'"),
        ({"keep_source_config": "yes"}, r"keep_source_config: expected true or false"),
        ({"base_model_prefix": ["bert"]}, r"base_model_prefix: expected a string, got list"),
        ({"model_types": "bert"}, r"model_types: expected a list, got str"),
        ({"ignore": [{"pattern": "x"}]}, r"ignore\[0\]: missing key\(s\) reason"),
        ({"family_defaults": {"eps": [1]}}, r"family_defaults\.eps: expected a number, string"),
        ({"reference": "tf1-encoder"}, r"reference: expected a mapping, got str"),
    ],
)
def test_wrong_types_in_a_table_are_errors(change, message):
    data = yaml.safe_load((tables_dir() / "bert-tf1.yaml").read_text())
    data.update(change)
    with pytest.raises(MappingTableError, match=message):
        parse_table("bert-tf1", data)


def test_a_reference_block_is_validated_when_the_table_loads():
    data = yaml.safe_load((tables_dir() / "bert-tf1.yaml").read_text())
    data["reference"] = {**data["reference"], "runner": "tf1-encodr"}
    with pytest.raises(MappingTableError, match=r"bert-tf1\.yaml: reference: runner 'tf1-encodr'"):
        parse_table("bert-tf1", data)


def test_tokenizer_families_are_data_and_a_misspelt_key_is_named(tmp_path):
    families = load_families()
    assert families.keras_hub["XLMRobertaTokenizer"].assets == {
        "vocabulary.spm": "sentencepiece.bpe.model"
    }
    assert families.family("bert-wordpiece").tokenizer_class == "BertTokenizer"
    assert families.parity_ids == (101, 102)
    text = (tables_dir() / FAMILIES_FILE).read_text().replace("slow_files:", "slow_file:", 1)
    path = _write(tmp_path, "families.yaml", text)
    with pytest.raises(MappingTableError) as err:
        load_families(path)
    assert "unknown key 'slow_file' (did you mean 'slow_files'?)" in err.value.one_line()


def test_a_keras_hub_tokenizer_of_an_unknown_family_is_an_error(tmp_path):
    text = (
        (tables_dir() / FAMILIES_FILE)
        .read_text()
        .replace("family: roberta-bpe", "family: roberta-bep", 1)
    )
    with pytest.raises(MappingTableError, match="unknown tokenizer families: roberta-bep"):
        load_families(_write(tmp_path, "families.yaml", text))
