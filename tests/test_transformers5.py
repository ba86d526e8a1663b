"""Converted output must also load — strictly — and compute the same in transformers 5.x.

transformers 5 cannot share a venv with the TF classes (it removed them), so `make install`
builds a second small venv (.venv-hf5: torch + transformers 5) and this test drives it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from .conftest import HEAD_CLASSES, KERAS_HUB_CLASSES
from .hf5 import HF5_PYTHON

LOAD_AND_RUN = r"""
import json, sys
import numpy as np, torch, transformers
out_dir, ids_path, result_path = sys.argv[1:4]
config = json.load(open(out_dir + "/config.json"))
cls = getattr(transformers, config["architectures"][0])
model, info = cls.from_pretrained(out_dir, output_loading_info=True)
problems = {k: list(v) for k, v in info.items() if v}
meta = [n for n, p in model.named_parameters() if p.device.type == "meta"]
model.eval()
ids = torch.from_numpy(np.load(ids_path))
with torch.no_grad():
    out = model(input_ids=ids, attention_mask=(ids != 1).long())
arrays = {k: v.numpy() for k, v in out.items() if isinstance(v, torch.Tensor)}
np.savez(result_path, **arrays)
print(json.dumps({"version": transformers.__version__, "problems": problems, "meta": meta}))
"""


@pytest.fixture(scope="module")
def hf5_python() -> Path:
    assert HF5_PYTHON.exists(), f"{HF5_PYTHON} is missing: run `make install`"
    return HF5_PYTHON


def _loads_and_matches_in_transformers_5(out_dir: Path, ids, hf5, tmp_path) -> None:
    import torch
    import transformers

    np.save(tmp_path / "ids.npy", ids)
    run = hf5.run(LOAD_AND_RUN, out_dir, tmp_path / "ids.npy", tmp_path / "out.npz")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["version"].startswith("5.")
    assert result["problems"] == {} and result["meta"] == []

    class_name = json.loads((out_dir / "config.json").read_text())["architectures"][0]
    model = getattr(transformers, class_name).from_pretrained(str(out_dir))
    model.eval()
    with torch.no_grad():
        reference = model(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy((ids != 1).astype(np.int64)),
        )
    v5 = np.load(tmp_path / "out.npz")
    compared = [k for k in reference.keys() if k in v5.files]
    assert compared
    for key in compared:
        np.testing.assert_allclose(v5[key], reference[key].numpy(), atol=1e-5, rtol=0, err_msg=key)


IDS = np.array([[0, 5, 6, 7, 8, 2], [0, 9, 10, 2, 1, 1]], dtype=np.int64)


@pytest.mark.parametrize("head", list(HEAD_CLASSES))
def test_output_loads_strictly_and_matches_in_transformers_5(head, converted, hf5, tmp_path):
    ids = IDS[None] if head == "multiple-choice" else IDS
    _loads_and_matches_in_transformers_5(converted[head], ids, hf5, tmp_path)


@pytest.mark.parametrize("head", list(KERAS_HUB_CLASSES))
def test_keras_hub_output_loads_strictly_in_transformers_5(
    head, keras_hub_converted, hf5, tmp_path
):
    out = keras_hub_converted[head, "preset"]
    _loads_and_matches_in_transformers_5(out, IDS, hf5, tmp_path)


@pytest.mark.parametrize("kind", ["pretraining", "classifier"])
def test_tf1_bert_output_loads_strictly_in_transformers_5(kind, tf1_converted, hf5, tmp_path):
    _loads_and_matches_in_transformers_5(tf1_converted[kind], IDS, hf5, tmp_path)


@pytest.mark.parametrize("class_name", ["RobertaForMaskedLM", "BertForSequenceClassification"])
def test_doctor_fixed_output_loads_strictly_in_transformers_5(class_name, hf5, tmp_path):
    """A DDP-wrapped state_dict repaired by `tf2pt doctor --fix` (tied decoder included)."""
    import torch
    import transformers

    from .conftest import BERT_TINY, TINY, run_cli

    dims = TINY if class_name.startswith("Roberta") else BERT_TINY
    config_class = transformers.RobertaConfig if dims is TINY else transformers.BertConfig
    torch.manual_seed(0)
    model = getattr(transformers, class_name)(config_class(**dims, num_labels=3))
    model.config.save_pretrained(tmp_path / "model")
    torch.save(torch.nn.DataParallel(model).state_dict(), tmp_path / "ddp.pt")
    fixed = tmp_path / "fixed"
    code, _, err = run_cli(
        [
            "doctor",
            str(tmp_path / "ddp.pt"),
            "--model",
            str(tmp_path / "model"),
            "--fix",
            str(fixed),
        ]
    )
    assert code == 0, err
    _loads_and_matches_in_transformers_5(fixed, IDS, hf5, tmp_path)
