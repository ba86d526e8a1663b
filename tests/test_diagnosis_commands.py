"""A diagnosis's command is a way through: run exactly as printed, it converts and passes.

The failures are converter mistakes, made by loading a mapping table with one fact wrong — the
bug class a table can have — on real trained weights (MiniLM as a google-research/bert TF1
checkpoint with its real-style bert_config.json): the gelu translation forgotten (what the Model
Garden and TF Hub tables did), and query and key swapped in every layer. The fixed conversion
must equal the correct table's conversion bit for bit."""

from __future__ import annotations

import copy
import json
import shlex

import pytest
from safetensors.numpy import load_file

from converter.plan import analysis
from converter.tables import parse_table, raw_table, tables_dir

from .conftest import run_cli

TANH_GELU = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")


def _table_with(monkeypatch, name: str, edit) -> None:
    """Conversions in this test choose `name` with `edit` applied to its YAML."""
    data = copy.deepcopy(raw_table(name, tables_dir()))
    edit(data)
    wrong = parse_table(name, data)
    real_select = analysis.select_table

    def select(layout, model_type, arch, names):
        chosen = real_select(layout, model_type, arch, names)
        return wrong if chosen.name == name else chosen

    monkeypatch.setattr(analysis, "select_table", select)


def _forget_the_gelu_translation(data: dict) -> None:
    del data["source_config"]["hidden_act"]  # modeling.py's "gelu" taken as transformers' erf


def _swap_query_and_key(data: dict) -> None:
    prefix = "{scope}/encoder/layer_{L}/"
    data["groups"]["encoder"] = {
        "src_prefix": prefix,
        "dense": {
            "query": "attention/self/key",
            "key": "attention/self/query",
            "value": "attention/self/value",
            "attention_output": "attention/output/dense",
            "intermediate": "intermediate/dense",
            "output": "output/dense",
        },
        "layernorm": {
            "attention_norm": "attention/output/LayerNorm",
            "output_norm": "output/LayerNorm",
        },
    }


def _fix_command(out) -> list[str]:
    """The command the failure's report leads with (parity_report.json, best passing entry)."""
    report = json.loads(
        (out.with_name(out.name + ".parity-failed") / "parity_report.json").read_text()
    )
    best = report["diagnosis"][0]
    assert best["passes"], report["diagnosis"][:3]
    return best, shlex.split(best["command"])


@pytest.mark.parametrize(
    "edit,expected_change",
    [
        (_forget_the_gelu_translation, "config"),
        (_swap_query_and_key, "swap"),
    ],
    ids=["gelu-translation-forgotten", "query-key-swapped"],
)
def test_the_printed_fix_converts_and_passes(corpus, tmp_path, monkeypatch, edit, expected_change):
    src = corpus.tf1("pretraining")
    right = corpus.converted(src)
    _table_with(monkeypatch, "bert-tf1", edit)

    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(src), str(out)])
    assert code == 1 and "parity failed" in err, err
    best, command = _fix_command(out)
    assert "fix: tf2pt convert" in err  # the command is printed, not only recorded
    if expected_change == "config":
        assert best["change"]["config"]["hidden_act"] in TANH_GELU
        assert "--set" in command
    else:
        assert (
            best["change"]["op"] == "swap" and command.count("--patch") == 12
        )  # every layer: weight and bias pairs
    assert command[:4] == ["tf2pt", "convert", str(src), str(out)]

    code, _, err = run_cli(command[1:])  # exactly as printed: tf2pt's own argv
    assert code == 0, err
    fixed, expected = (
        load_file(str(out / "model.safetensors")),
        load_file(str(right / "model.safetensors")),
    )
    assert fixed.keys() == expected.keys()
    for name, value in expected.items():
        assert (fixed[name] == value).all(), name
    config = json.loads((out / "config.json").read_text())
    assert config["hidden_act"] in TANH_GELU
