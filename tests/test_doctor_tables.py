"""The doctor knows an architecture only through its tables: dimensions, layer blocks and guessed
values come from the rules' targets, shape specs, placeholders and `config_guesses`.

The proof is an architecture the tables lack (the shipped DistilBERT table is set aside for it)
whose config speaks other words (DistilBERT: `dim`, `hidden_dim`, `n_layers`, `n_heads`): a table
for it, and no Python, must be enough for `tf2pt doctor` to read a config-less, DDP-wrapped
state_dict of it.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import transformers
import yaml

from converter.errors import MappingTableError
from converter.plan.fates import SourceFate, TargetFate
from converter.tables import config_keys as table_config
from converter.tables import load as table_loader
from converter.tables import load_table, parse_table, table_names, tables_dir

from .conftest import run_cli

DISTIL_TARGETS = {  # transformers' DistilBert* parameter names → shape in its config's words
    "distilbert.embeddings.word_embeddings.weight": ["vocab_size", "dim"],
    "distilbert.embeddings.position_embeddings.weight": ["max_position_embeddings", "dim"],
    "distilbert.embeddings.LayerNorm.weight": ["dim"],
    "distilbert.embeddings.LayerNorm.bias": ["dim"],
    **{
        f"distilbert.transformer.layer.{{L}}.{name}": shape
        for part in ("attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin")
        for name, shape in ((f"{part}.weight", ["dim", "dim"]), (f"{part}.bias", ["dim"]))
    },
    **{
        f"distilbert.transformer.layer.{{L}}.{norm}.{p}": ["dim"]
        for norm in ("sa_layer_norm", "output_layer_norm")
        for p in ("weight", "bias")
    },
    "distilbert.transformer.layer.{L}.ffn.lin1.weight": ["hidden_dim", "dim"],
    "distilbert.transformer.layer.{L}.ffn.lin1.bias": ["hidden_dim"],
    "distilbert.transformer.layer.{L}.ffn.lin2.weight": ["dim", "hidden_dim"],
    "distilbert.transformer.layer.{L}.ffn.lin2.bias": ["dim"],
}
DISTIL_HEAD = {
    "pre_classifier.weight": ["dim", "dim"],
    "pre_classifier.bias": ["dim"],
    "classifier.weight": ["num_labels", "dim"],
    "classifier.bias": ["num_labels"],
}
SIZES = {"vocab_size": 99, "dim": 128, "n_layers": 2, "n_heads": 2, "hidden_dim": 64}


def _rules(targets: dict[str, list]) -> list[dict]:
    return [{"src": d.replace(".", "/"), "dst": d, "shape": s} for d, s in targets.items()]


def distil_table_data() -> dict:
    return {
        "schema": 1,
        "description": "a DistilBERT table written for this test only",
        "architecture": "distilbert",
        "layout": "hf-keras",
        "model_type": "distilbert",
        "class_prefix": "DistilBert",
        "base_model_prefix": "distilbert",
        "placeholders": {"L": "n_layers"},
        "family_defaults": {"activation": "gelu"},
        "groups": {
            "base": {"rules": _rules(DISTIL_TARGETS)},
            "classifier": {"rules": _rules(DISTIL_HEAD)},
        },
        "heads": {
            "base-model": {"class": "Model", "groups": ["base"], "bare": True},
            "sequence-classification": {
                "class": "ForSequenceClassification",
                "groups": ["base", "classifier"],
            },
        },
        "config_guesses": {"n_heads": {"divide": "dim", "by": 64}},
    }


def test_dimensions_and_layer_blocks_are_read_through_the_tables_targets():
    table = parse_table("distilbert-test", distil_table_data())
    rules = table_config.compile_target_rules([table])
    shapes = {
        "module.distilbert.embeddings.word_embeddings.weight": (99, 128),
        "module.distilbert.embeddings.position_embeddings.weight": (40, 128),
        "module.distilbert.transformer.layer.0.ffn.lin1.weight": (64, 128),
        "module.distilbert.transformer.layer.2.sa_layer_norm.bias": (128,),
        "module.classifier.weight": (3, 128),
        "module.optimizer.step": (),
    }
    dims = table_config.dims_from_targets(shapes, rules)
    assert dims == {
        "vocab_size": 99,
        "dim": 128,
        "max_position_embeddings": 40,
        "hidden_dim": 64,
        "num_labels": 3,
        "n_layers": 3,
    }
    key = "distilbert.transformer.layer.1.attention.q_lin.weight"
    assert table_config.layer_of(key, rules) == "transformer.layer.1"
    assert table_config.layer_of("classifier.weight", rules) is None
    guess = table_config.table_guesses(table)["n_heads"]
    assert guess.value(dims) == (2, "guessed as dim / 64")
    assert table_config.model_keys(table)[:7] == [
        "vocab_size",
        "dim",
        "max_position_embeddings",
        "hidden_dim",
        "num_labels",
        "n_layers",
        "n_heads",
    ]


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [({"divde": "dim", "by": 64}, "takes only divide and by"), ({"divide": "dim"}, "needs both")],
)
def test_a_malformed_config_guess_names_its_table(entry, complaint):
    data = distil_table_data() | {"config_guesses": {"n_heads": entry}}
    table = parse_table("distilbert-test", data)
    with pytest.raises(MappingTableError, match=f"distilbert-test.yaml: .*{complaint}"):
        table_config.table_guesses(table)


def test_every_shipped_table_declares_well_formed_guesses_for_its_family():
    for arch in sorted({load_table(n).architecture for n in table_names()}):
        for key, guess in table_config.config_guesses(arch).items():
            assert not guess.divide or guess.divide in table_config.written_keys(arch), (arch, key)


@pytest.fixture
def install_tables(tmp_path, monkeypatch):
    """Makes the shipped tables, less DistilBERT's own, plus the given ones the tables directory."""
    tables = tmp_path / "mappings"
    shutil.copytree(tables_dir(), tables)
    for shipped in tables.glob("distilbert-*.yaml"):
        shipped.unlink()
    monkeypatch.setattr(table_loader, "tables_dir", lambda: tables)

    def install(**extra: dict) -> None:
        for name, data in extra.items():
            (tables / f"{name}.yaml").write_text(yaml.safe_dump(data))
        load_table.cache_clear()
        table_config.target_rules.cache_clear()

    yield install
    load_table.cache_clear()
    table_config.target_rules.cache_clear()


@pytest.fixture
def with_distil_table(install_tables):
    install_tables(**{"distilbert-hf-keras": distil_table_data()})  # in place of the shipped one


def _distil_checkpoint(path, drop: str = "") -> dict[str, torch.Tensor]:
    config = transformers.DistilBertConfig(**SIZES, max_position_embeddings=40, num_labels=3)
    torch.manual_seed(0)
    model = transformers.DistilBertForSequenceClassification(config)
    state = {f"module.{k}": v for k, v in model.state_dict().items() if not drop or drop not in k}
    torch.save(state, path)
    return state


def test_doctor_reads_a_new_architecture_from_its_table_alone(with_distil_table, tmp_path):
    ckpt = tmp_path / "ddp.pt"
    state = _distil_checkpoint(ckpt)
    code, out, err = run_cli(["doctor", str(ckpt), "--arch", "distilbert", "--json"])
    report = json.loads(out)
    assert code == 1 and "--set" in err  # a guessed head count never passes silently
    assert report["class"] == "DistilBertForSequenceClassification"
    assert report["assumed"] == {"n_heads": "n_heads=2 (guessed as dim / 64)"}
    assert report["family_defaults"] == {"activation": "gelu"}
    assert report["missing"] == [] and set(report["counts"]) == {SourceFate.REPAIRED}
    assert report["counts"][SourceFate.REPAIRED] == len(state)

    code, out, err = run_cli(["doctor", str(ckpt), "--arch", "distilbert", "--set", "n_heads=2"])
    assert code == 0, err
    assert "verdict: loads after repair" in out

    pruned = tmp_path / "pruned.pt"
    _distil_checkpoint(pruned, drop=".layer.1.")
    args = ["doctor", str(pruned), "--arch", "distilbert", "--set", "n_layers=2", "--json"]
    code, out, _ = run_cli(args)
    assert code == 1
    assert json.loads(out)["missing_by_layer"] == {"transformer.layer.1": 16}


def test_a_family_without_config_guesses_is_refused_rather_than_defaulted(install_tables, tmp_path):
    """With nothing declared for the head count, the class default (12) would be used silently."""
    data = distil_table_data()
    del data["config_guesses"]
    install_tables(**{"distilbert-hf-keras": data})
    ckpt = tmp_path / "ddp.pt"
    _distil_checkpoint(ckpt)
    code, out, err = run_cli(["doctor", str(ckpt), "--arch", "distilbert"])
    assert code == 2 and out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"tf2pt: error: {ckpt}: the distilbert tables declare no config_guesses")
    assert "--model" in last


def test_doctor_fates_are_words_of_the_shared_vocabulary(converted):
    """The doctor on a converted output speaks the vocabulary the conversion report uses."""
    code, out, err = run_cli(
        ["doctor", str(converted["masked-lm"] / "model.safetensors"), "--json"]
    )
    assert code == 0, err
    report = json.loads(out)
    assert {k["fate"] for k in report["keys"]} <= set(SourceFate)
    assert set(report["counts"]) == {SourceFate.AS_IS}
    conversion = json.loads((converted["masked-lm"] / "conversion_report.json").read_text())
    tied = {t["name"] for t in conversion["target_parameters"] if t["how"] == TargetFate.TIED}
    assert tied and set(report["tied"]) == tied


def test_tf1_variable_names_are_renamed_by_the_tf1_table(tf1_checkpoints, tf1_converted, tmp_path):
    """A dump of a google-research/bert checkpoint's variables by name: the tf-names repair
    reaches the TF1 table through its layout's real name (`tf1-checkpoint`)."""
    import tensorflow as tf
    from safetensors.torch import load_file, save_file

    reader = tf.train.load_checkpoint(str(tf1_checkpoints["classifier"]))
    state = {
        f"{name}:0": torch.from_numpy(reader.get_tensor(name))
        for name in reader.get_variable_to_shape_map()
        if not name.endswith(("adam_m", "adam_v", "global_step"))
    }
    assert "bert/encoder/layer_0/attention/self/query/kernel:0" in state
    save_file(state, tmp_path / "tf1_dump.safetensors")
    reference = tf1_converted["classifier"]
    args = ["doctor", str(tmp_path / "tf1_dump.safetensors"), "--model", str(reference)]
    code, out, err = run_cli([*args, "--json"])
    report = json.loads(out)
    assert code == 0, err
    assert report["verdict"] == "loads after repair" and report["repairs_used"].keys() == {
        "tf-names"
    }
    code, _, err = run_cli([*args, "--fix", str(tmp_path / "fixed")])
    assert code == 0, err
    fixed = load_file(str(tmp_path / "fixed" / "model.safetensors"))
    expected = load_file(str(reference / "model.safetensors"))
    assert fixed.keys() == expected.keys()
    assert all(torch.equal(fixed[k], expected[k]) for k in expected)
