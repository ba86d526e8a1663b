"""`--patch` on real trained weights (MiniLM as a transformers TF h5): each op undoes the layout
corruption it names, applied to the converted tensors before they are written, and parity
judges the result like any other conversion.

The corruptions are injected into a copy of the source (tests/h5edit.py) and written here from
what each op means, not with the ops themselves. A faithful conversion of a corrupted source is
a faithful copy of the corruption, so the patched conversion is verified against the
uncorrupted source's TF model. The uncorrupted source's layer-5 output bias is zero (a model that
adds none); its corrupted copy stores one, which `zero` drops.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from . import real_models
from .conftest import nothing_written, read_json, run_cli
from .h5edit import swap_weights, transform_weight
from .real_weights import minilm_dir

LAYER = "/bert/encoder/layer_._{}/"  # after the model scope, which Keras numbers per process
HEADS = 12  # MiniLM's, and the config's num_attention_heads
PT = "encoder.layer.{}."
PATCHES = [  # each undoes one corruption below
    "transpose=" + PT.format(0) + "attention.self.query.weight",
    "swap="
    + PT.format(2)
    + "attention.self.query.weight,"
    + PT.format(2)
    + "attention.self.key.weight",
    "swap="
    + PT.format(2)
    + "attention.self.query.bias,"
    + PT.format(2)
    + "attention.self.key.bias",
    "permute_heads="
    + PT.format(4)
    + "attention.self.value.weight,"
    + PT.format(4)
    + "attention.self.value.bias",
    "zero=" + PT.format(5) + "output.dense.bias",
]


def _heads_interleaved(value: np.ndarray) -> np.ndarray:
    """A q/k/v kernel [in, out] (or bias [out]) whose output unit d·heads + h is stored at
    h·head_dim + d: what reading the stored units as [heads, head_dim] and writing them as
    [head_dim, heads] (permute_heads) puts back."""
    out = value.shape[-1]
    split = value.reshape(*value.shape[:-1], out // HEADS, HEADS)
    return np.ascontiguousarray(np.swapaxes(split, -1, -2).reshape(value.shape))


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("patches")
    clean = real_models.save_tf_h5(minilm_dir(), "BertModel", root / "clean")
    h5 = clean / "tf_model.h5"
    trained_bias = {}
    transform_weight(
        h5,
        "bert",
        LAYER.format(5) + "output/dense/bias:0",
        lambda b: trained_bias.setdefault("value", b) * 0,
    )
    corrupted = root / "corrupted"
    shutil.copytree(clean, corrupted)
    h5 = corrupted / "tf_model.h5"
    transform_weight(h5, "bert", LAYER.format(0) + "attention/self/query/kernel:0", np.transpose)
    for kind in ("kernel:0", "bias:0"):
        swap_weights(
            h5,
            "bert",
            LAYER.format(2) + "attention/self/query/" + kind,
            LAYER.format(2) + "attention/self/key/" + kind,
        )
        transform_weight(
            h5, "bert", LAYER.format(4) + "attention/self/value/" + kind, _heads_interleaved
        )
    transform_weight(
        h5, "bert", LAYER.format(5) + "output/dense/bias:0", lambda b: trained_bias["value"]
    )
    return {"clean": clean, "corrupted": corrupted}


def test_patches_undo_the_corruptions_they_name(sources, tmp_path):
    patched, unpatched = tmp_path / "patched", tmp_path / "unpatched"
    argv = ["convert", str(sources["corrupted"]), str(patched), "--no-verify"]
    code, _, err = run_cli(argv + [a for p in PATCHES for a in ("--patch", p)])
    assert code == 0, err
    for patch in PATCHES:
        assert f"tf2pt: declared patch {patch} (with --patch" in err
    recorded = read_json(patched / "conversion_report.json")["patches"]
    assert [f"{p['op']}={','.join(p['tensors'])}" for p in recorded] == PATCHES
    assert all(p["kind"] == "user" for p in recorded)
    code, _, err = run_cli(["verify", str(sources["clean"]), str(patched)])
    assert code == 0 and "parity passed" in err, err
    assert "- declared patch zero=" in (patched / "parity_report.md").read_text()
    written = load_file(str(patched / "model.safetensors"))
    assert not written[PT.format(5) + "output.dense.bias"].any()

    code, _, err = run_cli(["convert", str(sources["corrupted"]), str(unpatched), "--no-verify"])
    assert code == 0, err
    code, _, err = run_cli(["verify", str(sources["clean"]), str(unpatched)])
    assert code == 1, err
    assert (
        read_json(unpatched / "parity_report.json")["first_divergence"]["name"]
        == "hidden_states[1]"
    )


def test_a_patch_reaches_parity_and_a_wrong_one_fails_it_where_it_acts(sources, tmp_path):
    out = tmp_path / "out"
    swap = PATCHES[1]
    code, _, err = run_cli(["convert", str(sources["clean"]), str(out), "--patch", swap])
    assert code == 1 and "parity failed" in err and nothing_written(out), err
    kept = out.with_name("out.parity-failed")
    assert read_json(kept / "parity_report.json")["first_divergence"]["name"] == "hidden_states[3]"
    assert f"- declared patch {swap} (with --patch" in (kept / "parity_report.md").read_text()
    assert f"- declared patch {swap} (with --patch" in (kept / "README.md").read_text()
