"""RoBERTa-layout variants (XLM-RoBERTa, CamemBERT, PhoBERT) reuse the RoBERTa table through
`extends:` and produce configs whose model_type and class load with AutoModel… in transformers
4.57 and 5."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from converter.tables import load_table

from .conftest import convert_once
from .fixture_cache import cached
from .producers import build_tf_model

VARIANTS = {  # name → (model_type of the source config, TF class, --arch, Auto class)
    "xlm-roberta": (
        "xlm-roberta",
        "TFXLMRobertaForSequenceClassification",
        None,
        "AutoModelForSequenceClassification",
    ),
    "camembert": ("camembert", "TFCamembertForMaskedLM", None, "AutoModelForMaskedLM"),
    "phobert": (
        "roberta",
        "TFRobertaForTokenClassification",
        "phobert",
        "AutoModelForTokenClassification",
    ),
}

AUTO_LOAD = r"""
import json, sys, transformers

def auto_load(out, auto):
    model, info = getattr(transformers, auto).from_pretrained(out, output_loading_info=True)
    meta = [n for n, p in model.named_parameters() if p.device.type == "meta"]
    return {"class": type(model).__name__, "version": transformers.__version__,
            "problems": {k: list(v) for k, v in info.items() if v}, "meta": meta}

if __name__ == "__main__":
    print(json.dumps(auto_load(*sys.argv[1:3])))
"""


def build_variants(root: Path) -> None:
    """Per variant, `root/<name>`: its TF class saved by transformers, every weight random."""
    for i, (name, (model_type, tf_class, _, _)) in enumerate(VARIANTS.items()):
        class_name = tf_class.removeprefix("TF")
        build_tf_model(model_type, class_name, root / name, seed=70 + i, num_labels=3)


@pytest.fixture(scope="module")
def variant_outputs(tmp_path_factory):
    root = cached("tf-roberta-variants", build_variants)
    sources = {name: root / name for name in VARIANTS}
    args = {name: ["--arch", arch] for name, (_, _, arch, _) in VARIANTS.items() if arch}
    return convert_once(tmp_path_factory, "variant_outputs", sources, args)


def test_variant_tables_extend_the_roberta_table_rather_than_copy_it():
    roberta = load_table("roberta-hf-keras")
    for name in ("xlm-roberta", "camembert", "phobert"):
        table = load_table(f"{name}-hf-keras")
        assert table.extends == "roberta-hf-keras"
        assert table.groups == roberta.groups and table.ignore == roberta.ignore


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_verifies_and_loads_with_auto_classes_in_4_57_and_5(name, variant_outputs, hf5):
    out = variant_outputs[name]
    parity = json.loads((out / "parity_report.json").read_text())
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-5
    config = json.loads((out / "config.json").read_text())
    model_type, tf_class, _, auto = VARIANTS[name]
    assert config["model_type"] == model_type
    assert config["architectures"] == [tf_class.removeprefix("TF")]
    if name == "phobert":
        assert config["tokenizer_class"] == "PhobertTokenizer"
    here: dict = {}
    exec(AUTO_LOAD, here)  # defines auto_load; __name__ is not "__main__" here
    run = hf5.run(AUTO_LOAD, out, auto)
    assert run.returncode == 0, run.stderr
    in_5 = json.loads(run.stdout.strip().splitlines()[-1])
    assert in_5["version"].startswith("5.")
    for result in (here["auto_load"](str(out), auto), in_5):
        assert result["class"] == tf_class.removeprefix("TF"), result
        assert result["problems"] == {} and result["meta"] == [], result
