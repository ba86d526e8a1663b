"""A config value means what its producer's code computes, on real trained weights (MiniLM).

Model Garden's BERT releases and TF Hub's BERT encoders come with the google-research-style
bert_config.json whose "gelu" Model Garden's get_activation makes the tanh form: both convert and
pass by default, built here by the producers' own tools (Model Garden's TF1 → TF2 checkpoint
converter, export_tfhub_lib) from a google-research/bert TF1 checkpoint of the trained weights.
`--set` decides the converted model and never the TF reference, so parity tests it; `--config`
is the source's config, which the reference is built from too. Every value not from the source
is said on stderr, in conversion_report.json, parity_report.md and the model card.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from converter.provenance import parse_settings

from . import real_models
from .conftest import read_json, run_cli, save_tf1_checkpoint
from .real_weights import minilm_dir


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> dict[str, Path]:
    """The trained encoder as a google-research/bert TF1 checkpoint, as the Model Garden
    checkpoint Model Garden's converter makes of it, and as the TF Hub export of that."""
    root = tmp_path_factory.mktemp("releases")
    model = real_models.tf_model(minilm_dir(), "BertModel")
    tf1 = save_tf1_checkpoint(model, root / "tf1", with_optimizer=False)
    garden = real_models.save_model_garden(tf1, root / "model-garden")
    return {
        "tf1": tf1,
        "model-garden": garden,
        "tfhub": real_models.export_tfhub(garden, root / "hub"),
    }


@pytest.fixture(scope="module")
def converted(releases, tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """The Model Garden and TF Hub releases converted with default settings: (OUT, stderr)."""
    root = tmp_path_factory.mktemp("converted")
    outs = {}
    for kind in ("model-garden", "tfhub"):
        code, _, err = run_cli(["convert", str(releases[kind]), str(root / kind)])
        assert code == 0, err
        outs[kind] = (root / kind, err)
    return outs


def _assumed(out: Path) -> dict[str, dict]:
    return {a["key"]: a for a in read_json(out / "conversion_report.json")["assumptions"]}


def _first_divergence(out: Path) -> str:
    return read_json(out / "parity_report.json")["first_divergence"]["name"]


@pytest.mark.parametrize("kind", ["model-garden", "tfhub"])
def test_release_with_its_bert_config_passes_and_says_what_gelu_means(kind, releases, converted):
    out, err = converted[kind]
    assert json.loads((releases[kind] / "bert_config.json").read_text())["hidden_act"] == "gelu"
    assert "parity passed" in err and read_json(out / "parity_report.json")["passed"]
    assert read_json(out / "config.json")["hidden_act"] == "gelu_new"
    act = _assumed(out)["hidden_act"]
    assert (act["kind"], act["source_value"], act["value"]) == ("translated", "gelu", "gelu_new")
    assert "tanh" in act["reason"]
    line = next(x for x in err.splitlines() if "hidden_act=" in x)
    assert line.startswith("tf2pt: assumed hidden_act=gelu_new (translated from gelu: ")
    eps = _assumed(out)["layer_norm_eps"]  # bert_config.json has none: Model Garden fixes it
    assert (eps["kind"], eps["value"]) == ("default", 1e-12)
    said = line.removeprefix("tf2pt: ")
    for report in ("parity_report.md", "README.md"):
        text = (out / report).read_text()
        assert "## Assumed and declared" in text and f"- {said}" in text, report


@pytest.fixture(scope="module")
def garden_without_activation(releases, tmp_path_factory) -> Path:
    """The Model Garden checkpoint with a hand-written config.json that names no activation and
    the wrong layer-norm epsilon (RoBERTa's): what a user might put beside it."""
    src = tmp_path_factory.mktemp("hand-config") / "model-garden"
    shutil.copytree(releases["model-garden"], src)
    config = json.loads((src / "bert_config.json").read_text())
    del config["hidden_act"]
    (src / "bert_config.json").unlink()
    (src / "config.json").write_text(json.dumps(config | {"layer_norm_eps": 1e-5}))
    return src


@pytest.mark.parametrize(
    "settings,first",
    [
        (["hidden_act=gelu_new", "layer_norm_eps=1e-12"], None),
        # the erf form: what writing the release's bert_config.json verbatim meant
        (["hidden_act=gelu", "layer_norm_eps=1e-12"], "hidden_states[1]"),
        (["hidden_act=gelu_new"], "hidden_states[0]"),  # the config's 1e-5 vs Model Garden's 1e-12
    ],
)
def test_set_decides_the_converted_model_and_parity_tests_it(
    garden_without_activation, tmp_path, settings, first
):
    out = tmp_path / "out"
    argv = ["convert", str(garden_without_activation), str(out)]
    code, _, err = run_cli(argv + [a for s in settings for a in ("--set", s)])
    kept = out if first is None else out.with_name("out.parity-failed")
    assert code == (0 if first is None else 1), err
    assert (first is None) == out.is_dir()
    written = read_json(kept / "config.json")
    declared = {a["key"]: a for a in read_json(kept / "conversion_report.json")["assumptions"]}
    for setting in settings:
        key, value = setting.split("=")
        assert written[key] == parse_settings((setting,))[key]
        assert declared[key]["kind"] == "user" and "--set" in declared[key]["reason"]
        assert f"tf2pt: declared {key}={value}" in err
        assert f"- declared {key}={value}" in (kept / "parity_report.md").read_text()
    if first is not None:
        assert _first_divergence(kept) == first


def test_roberta_layer_norm_eps_set_to_bert_s_fails_at_the_embeddings(tmp_path):
    """The other way round: a RoBERTa (eps 1e-5, in its config.json, which its TF reference is
    built from) told 1e-12 with --set."""
    src = real_models.save_tf_h5(
        real_models.save_pretrained_pt(tmp_path / "pt", "roberta", positions=128),
        "RobertaModel",
        tmp_path / "roberta",
    )
    assert read_json(src / "config.json")["layer_norm_eps"] == 1e-5
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(src), str(out), "--set", "layer_norm_eps=1e-12"])
    assert code == 1 and "parity failed" in err, err
    assert _first_divergence(out.with_name("out.parity-failed")) == "hidden_states[0]"


# --- --config: the source's config, which the conversion and its TF reference both read ---


def test_tf1_checkpoint_takes_its_bert_config_from_config_and_so_does_verify(releases, tmp_path):
    src = tmp_path / "tf1"
    shutil.copytree(releases["tf1"], src)
    config = tmp_path / "elsewhere" / "bert_config.json"
    config.parent.mkdir()
    (src / "bert_config.json").rename(config)
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(src), str(out), "--no-verify"])
    assert code == 2 and "no bert_config.json" in err, err
    code, _, err = run_cli(["convert", str(src), str(out), "--config", str(config)])
    assert code == 0 and "parity passed" in err, err
    declared = {a["key"]: a for a in read_json(out / "conversion_report.json")["assumptions"]}
    assert declared["num_attention_heads"]["reason"] == f"in --config {config}"
    assert declared["hidden_act"]["kind"] == "translated"  # its gelu, read in modeling.py's terms
    code, _, err = run_cli(["verify", str(src), str(out)])
    assert code == 2 and "no bert_config.json" in err, err
    code, _, err = run_cli(["verify", str(src), str(out), "--config", str(config)])
    assert code == 0 and "parity passed" in err, err


def test_model_garden_reference_is_rebuilt_with_the_config_files_activation(releases, tmp_path):
    """relu in the config file is relu in Model Garden's rebuild too: were the reference left at
    its default gelu, the converted relu model would fail."""
    config = tmp_path / "relu.json"
    base = json.loads((releases["model-garden"] / "bert_config.json").read_text())
    config.write_text(json.dumps(base | {"hidden_act": "relu"}))
    out = tmp_path / "out"
    argv = ["convert", str(releases["model-garden"]), str(out), "--config", str(config)]
    code, _, err = run_cli(argv)
    assert code == 0 and "parity passed" in err, err
    assert read_json(out / "config.json")["hidden_act"] == "relu"
    assert f"tf2pt: declared hidden_act=relu (in --config {config})" in err


def test_transformers_tf_reference_is_built_from_the_config_file(tmp_path):
    src = real_models.save_tf_h5(minilm_dir(), "BertModel", tmp_path / "h5")
    config = tmp_path / "tanh.json"
    config.write_text(json.dumps(read_json(src / "config.json") | {"hidden_act": "gelu_new"}))
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(src), str(out), "--config", str(config)])
    assert code == 0 and "parity passed" in err, err
    assert read_json(out / "config.json")["hidden_act"] == "gelu_new"
