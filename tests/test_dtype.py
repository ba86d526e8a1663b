"""`convert --dtype bfloat16|float16` on real trained weights (all-MiniLM-L6-v2 as transformers'
TFBertForMaskedLM tf_model.h5, at its full 512 positions, the set-up the resolution table in
converter/verify/resolution.py was measured on): the output carries the dtype, every tensor is
torch's own cast of the float32 conversion, it loads in transformers 4 and 5, parity passes in
that dtype, and a real bug is caught exactly where the table says the dtype resolves it. Also
sources stored in half precision (keras-hub, TF1) convert and verify.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from converter import api
from converter.verify.resolution import DETECTION

from . import real_models
from .conftest import run_cli, save_tf1_checkpoint
from .real_weights import minilm_dir
from .test_transformers5 import HF5_PYTHON

HALVES = ("bfloat16", "float16")
SAFETENSORS = {"bfloat16": "BF16", "float16": "F16"}


@pytest.fixture(scope="module")
def minilm_mlm(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("minilm") / "tf-masked-lm"
    return real_models.save_tf_h5(minilm_dir(), "BertForMaskedLM", directory)


@pytest.fixture(scope="module")
def converted(minilm_mlm, tmp_path_factory) -> dict[str, Path]:
    """The float32 conversion (not verified here: test_real_scale proves it), and each half
    precision converted and verified by the command line."""
    root = tmp_path_factory.mktemp("converted")
    outs = {"float32": api.convert(minilm_mlm, root / "float32", verify=False).out}
    for dtype in HALVES:
        code, _, err = run_cli(["convert", str(minilm_mlm), str(root / dtype), "--dtype", dtype])
        assert code == 0, err
        outs[dtype] = root / dtype
    return outs


def _tensors(out: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(out / "model.safetensors"))


@pytest.mark.parametrize("dtype", HALVES)
def test_every_tensor_and_the_config_carry_the_dtype(converted, dtype):
    import torch

    out = converted[dtype]
    assert {t.dtype for t in _tensors(out).values()} == {getattr(torch, dtype)}
    header_length = int.from_bytes((out / "model.safetensors").read_bytes()[:8], "little")
    header = json.loads((out / "model.safetensors").read_bytes()[8 : 8 + header_length])
    assert {e["dtype"] for k, e in header.items() if k != "__metadata__"} == {SAFETENSORS[dtype]}
    config = json.loads((out / "config.json").read_text())
    assert config["torch_dtype"] == config["dtype"] == dtype
    assert json.loads((out / "conversion_report.json").read_text())["dtype"] == dtype
    assert f"| dtype | {dtype} " in (out / "README.md").read_text()


@pytest.mark.parametrize("dtype", HALVES)
def test_every_tensor_is_torchs_own_cast_of_the_float32_conversion(converted, dtype):
    """Bit for bit: rounded to nearest, ties to even, as torch rounds (truncating the float32
    bits would differ on about half of all values)."""
    import torch

    full, half = _tensors(converted["float32"]), _tensors(converted[dtype])
    assert full.keys() == half.keys() and len(full) > 100
    truncation_differs = 0
    for name, value in full.items():
        expected = value.to(getattr(torch, dtype))
        assert torch.equal(expected.view(torch.int16), half[name].view(torch.int16)), name
        if dtype == "bfloat16":
            truncated = (value.view(torch.int32) >> 16).to(torch.int16)
            truncation_differs += int((truncated != half[name].view(torch.int16)).sum())
    assert dtype == "float16" or truncation_differs > 1_000_000


@pytest.mark.parametrize("dtype", HALVES)
def test_parity_passes_in_the_dtype_against_its_own_measured_noise(converted, dtype):
    report = json.loads((converted[dtype] / "parity_report.json").read_text())
    assert report["passed"] and report["dtype"] == dtype
    assert report["gate"]["kind"] == "measured-noise" and report["gate"]["precision"] == dtype
    for o in report["outputs"]:
        assert o["noise"] > 0 and o["max_abs_diff"] <= o["tolerance"], o["name"]
    # the half precision's noise is far above float32's: the report is judged on its own
    assert report["outputs"][-1]["noise"] > 1e-3
    logits = report["outputs"][-1]
    assert logits["name"] == "logits" and 0.9 < logits["argmax_agreement"] <= 1.0
    markdown = (converted[dtype] / "parity_report.md").read_text()
    assert f"the converted model in {dtype} against the float32 reference" in markdown
    resolves = DETECTION["gelu → gelu_new"][dtype] > 1
    assert resolves or "gelu → gelu_new (" in markdown.split(f"resolvable in {dtype}")[1]
    card = (converted[dtype] / "README.md").read_text()
    assert "Top-1 agreement of `logits` with the float32 reference" in card


@pytest.mark.parametrize("dtype", HALVES)
def test_the_output_loads_in_its_dtype_in_transformers_4_and_5(converted, dtype):
    import torch
    import transformers

    out = converted[dtype]
    model, info = transformers.BertForMaskedLM.from_pretrained(
        str(out), torch_dtype="auto", output_loading_info=True
    )
    assert model.dtype == getattr(torch, dtype)
    assert not any(info.values()), info
    code = (
        "import sys, transformers; m, i = transformers.BertForMaskedLM.from_pretrained("
        "sys.argv[1], output_loading_info=True); print(m.dtype, sum(map(len, i.values())), "
        "transformers.__version__)"
    )
    run = subprocess.run(
        [str(HF5_PYTHON), "-c", code, str(out)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    loaded, problems, version = run.stdout.split()[-3:]
    assert (loaded, problems) == (f"torch.{dtype}", "0") and version.startswith("5.")


# --- a real bug, where the dtype can resolve it, and where it cannot ---


@pytest.fixture(scope="module")
def reference(minilm_mlm):
    """The TF reference's outputs on the parity inputs, computed once for the bugs below."""
    from converter.plan.analysis import analyse
    from converter.verify.inputs import make_inputs
    from converter.verify.runners import declared_runner

    analysis = analyse(minilm_mlm)
    plan = analysis.plan
    inputs = make_inputs(plan.dims, plan.table.position_offset)
    runner = declared_runner(plan)(analysis.source, plan)
    return plan.class_name, inputs.batches, [runner.run(b) for b in inputs.batches]


def _swap_query_and_key(out: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(out / "model.safetensors"))
    base = "bert.encoder.layer.2.attention.self."
    for kind in ("weight", "bias"):
        q, k = f"{base}query.{kind}", f"{base}key.{kind}"
        tensors[q], tensors[k] = tensors[k], tensors[q]
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})


def _gelu_new(out: Path) -> None:
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps(config | {"hidden_act": "gelu_new"}))


BUGS = {"query and key swapped": _swap_query_and_key, "gelu → gelu_new": _gelu_new}


@pytest.mark.parametrize("bug", list(BUGS))
@pytest.mark.parametrize("dtype", HALVES)
def test_a_bug_is_caught_exactly_where_the_dtype_resolves_it(
    converted, reference, tmp_path, bug, dtype
):
    import shutil

    from converter.verify.compare import compare_outputs
    from converter.verify.gate import Gate
    from converter.verify.torch_side import run_converted

    broken = shutil.copytree(converted[dtype], tmp_path / "broken")
    BUGS[bug](broken)
    class_name, batches, references = reference
    runs, _ = run_converted(broken, class_name, batches, precision=dtype)  # (runs, runner)
    masks = [b.flat_mask() for b in batches]
    rows = zip(references, runs.candidate, runs.float64, masks, strict=True)
    diffs = compare_outputs(list(rows), Gate(precision=dtype))
    ratio = max(d.max_abs_diff / d.tolerance for d in diffs)
    recorded = DETECTION[bug][dtype]
    assert any(not d.passed for d in diffs) == (recorded > 1)  # what the reports claim
    assert recorded / 1.5 < ratio < recorded * 1.5  # and the measurement reproduces


# --- sources stored in half precision ---


def _verified(src: Path, out: Path, *flags: str) -> dict:
    code, _, err = run_cli(["convert", str(src), str(out), *flags])
    assert code == 0, err
    return json.loads((out / "parity_report.json").read_text())


def test_a_bfloat16_keras_hub_model_converts_and_verifies_against_a_float32_reference(tmp_path):
    """A `.keras` file keeps its bfloat16 policy; the reference is rebuilt in float32."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras_hub

    from .conftest import KERAS_HUB_TINY, randomize_keras_weights

    model = keras_hub.models.RobertaBackbone(**KERAS_HUB_TINY, dtype="bfloat16")
    randomize_keras_weights(model, seed=3)
    model.save(str(tmp_path / "model.keras"))
    report = _verified(tmp_path / "model.keras", tmp_path / "out", "--dtype", "bfloat16")
    assert report["passed"] and report["dtype"] == "bfloat16"
    source = json.loads((tmp_path / "out" / "conversion_report.json").read_text())
    assert {t["dtype"] for t in source["source_tensors"]} == {"bfloat16"}
    stored = model.token_embedding.embeddings.numpy().astype(np.float32)
    words = _tensors(tmp_path / "out")["embeddings.word_embeddings.weight"]
    np.testing.assert_array_equal(words.float().numpy(), stored)


@pytest.mark.parametrize("stored", ["float16", "bfloat16"])
def test_a_half_precision_tf1_checkpoint_converts_and_verifies(tmp_path, stored):
    import tensorflow as tf
    import transformers

    from .conftest import BERT_TINY

    model = transformers.TFBertForPreTraining(transformers.BertConfig(**BERT_TINY))
    model(model.dummy_inputs)
    full = save_tf1_checkpoint(model, tmp_path / "float32", with_optimizer=False)
    half = tmp_path / stored
    half.mkdir()
    reader = tf.train.load_checkpoint(str(full))
    graph = tf.Graph()
    with graph.as_default():
        for name in reader.get_variable_to_shape_map():
            value = tf.constant(reader.get_tensor(name))
            if value.dtype == tf.float32:
                value = tf.cast(value, getattr(tf, stored))
            tf.compat.v1.get_variable(name, initializer=value)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver().save(session, str(half / "model.ckpt"), global_step=1)
    for name in ("bert_config.json", "vocab.txt"):
        (half / name).write_bytes((full / name).read_bytes())
    report = _verified(half, tmp_path / "out")  # the default float32: exact widening
    assert report["passed"] and report["dtype"] == "float32"
    source = json.loads((tmp_path / "out" / "conversion_report.json").read_text())
    assert stored in {t["dtype"] for t in source["source_tensors"]}


def test_verify_refuses_a_config_that_names_another_dtype_than_the_weights(
    converted, minilm_mlm, tmp_path
):
    """transformers 5 loads the model in the dtype config.json names: it must be the weights'."""
    import shutil

    out = shutil.copytree(converted["bfloat16"], tmp_path / "out")
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps(config | {"dtype": "float32"}))
    code, _, err = run_cli(["verify", str(minilm_mlm), str(out)])
    assert code == 2 and "Traceback" not in err
    assert 'config.json says "dtype": "float32" but the weights are bfloat16' in err


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_float64_pass_computes_what_the_model_loaded_in_float64_computes(
    converted, reference, dtype
):
    """The noise is measured against a float64 run made by widening one module at a time
    (the masked-LM decoder, 30,522 × 384, in blocks of rows) on the model loaded in its own
    dtype: it must equal the model loaded in float64 outright."""
    import torch

    from converter.verify.torch_side import TorchRunner

    class_name, batches, _ = reference
    widened = TorchRunner(converted[dtype], class_name, dtype)
    streamed = [widened.run(b, float64=True) for b in batches]
    widened.model.to(torch.float64)
    widened.numpy_dtype = np.dtype("float64")
    loaded = [widened.run(b) for b in batches]
    for ours, theirs in zip(streamed, loaded, strict=True):
        assert ours.keys() == theirs.keys()
        for name in ours:
            assert ours[name].dtype == np.float64
            np.testing.assert_allclose(ours[name], theirs[name], rtol=0, atol=1e-12, err_msg=name)
