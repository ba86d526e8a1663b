"""RoBERTa-layout variants (XLM-RoBERTa, CamemBERT, PhoBERT) reuse the RoBERTa table through
`extends:` and produce configs whose model_type and class load with AutoModel… in transformers
4.57 and 5."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import transformers

from converter.tables import load_table

from .conftest import TINY, randomize_tf_weights, run_cli
from .test_transformers5 import HF5_PYTHON

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
out, auto = sys.argv[1:3]
model, info = getattr(transformers, auto).from_pretrained(out, output_loading_info=True)
meta = [n for n, p in model.named_parameters() if p.device.type == "meta"]
print(json.dumps({"class": type(model).__name__, "version": transformers.__version__,
                  "problems": {k: list(v) for k, v in info.items() if v}, "meta": meta}))
"""


@pytest.fixture(scope="module")
def variant_outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("variants")
    outs = {}
    for i, (name, (model_type, tf_class, arch, _)) in enumerate(VARIANTS.items()):
        config = transformers.AutoConfig.for_model(model_type, **TINY, num_labels=3)
        model = getattr(transformers, tf_class)(config)
        model(model.dummy_inputs)
        randomize_tf_weights(model, 70 + i)
        model.save_pretrained(str(root / name))
        argv = ["convert", str(root / name), str(root / f"{name}-out")]
        code, _, err = run_cli(argv + (["--arch", arch] if arch else []))
        assert code == 0, err
        outs[name] = root / f"{name}-out"
    return outs


def test_variant_tables_extend_the_roberta_table_rather_than_copy_it():
    roberta = load_table("roberta-hf-keras")
    for name in ("xlm-roberta", "camembert", "phobert"):
        table = load_table(f"{name}-hf-keras")
        assert table.extends == "roberta-hf-keras"
        assert table.groups == roberta.groups and table.ignore == roberta.ignore


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_verifies_and_loads_with_auto_classes_in_4_57_and_5(name, variant_outputs):
    out = variant_outputs[name]
    parity = json.loads((out / "parity_report.json").read_text())
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-5
    config = json.loads((out / "config.json").read_text())
    model_type, tf_class, _, auto = VARIANTS[name]
    assert config["model_type"] == model_type
    assert config["architectures"] == [tf_class.removeprefix("TF")]
    if name == "phobert":
        assert config["tokenizer_class"] == "PhobertTokenizer"
    for python in (sys.executable, str(HF5_PYTHON)):
        run = subprocess.run(
            [python, "-c", AUTO_LOAD, str(out), auto], capture_output=True, text=True, timeout=300
        )
        assert run.returncode == 0, run.stderr
        result = json.loads(run.stdout.strip().splitlines()[-1])
        assert result["class"] == tf_class.removeprefix("TF"), result
        assert result["problems"] == {} and result["meta"] == [], result
