"""The parity gate on real trained weights (tests/real_models.py): every exact conversion passes
with the default gate, through every source layout and head, and every real bug fails with the
right first divergence.

Exactness is proved independently of the gate: the converted tensors equal the trained ones bit
for bit, so a failure here is the gate crying wolf, never a conversion bug it caught.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from .conftest import copy_tree, mutated_copy, run_cli
from .mutations import swapped
from .real_corpus import CLASSES, HEADS_POSITIONS


def _parity(out: Path) -> dict:
    return json.loads((out / "parity_report.json").read_text())


def _assert_trained_tensors_exact(out: Path, pytorch_dir: Path, prefix: str) -> None:
    """Every trained tensor reached the output bit for bit (the exactness behind the verdict)."""
    written = load_file(str(out / "model.safetensors"))
    trained = load_file(str(pytorch_dir / "model.safetensors"))
    compared = 0
    for name, value in trained.items():
        name = name.removeprefix(prefix)
        if name.startswith(("lm_head", "pooler", "embeddings.position_ids")):
            continue
        key = next(k for k in written if k.endswith("." + name) or k == name)
        np.testing.assert_array_equal(written[key], value, err_msg=name)
        compared += 1
    assert compared >= 100


def _assert_passed_by_the_measured_gate(out: Path) -> dict:
    report = _parity(out)
    assert report["passed"], [
        (o["name"], o["max_abs_diff"], o["tolerance"]) for o in report["outputs"]
    ]
    assert report["gate"]["kind"] == "measured-noise"
    for o in report["outputs"]:
        assert o["noise"] > 0 and o["max_abs_diff"] <= o["tolerance"]
    return report


@pytest.mark.parametrize("family,head", [(f, h) for f, heads in CLASSES.items() for h in heads])
def test_exact_hf_h5_conversion_of_trained_weights_passes_the_default_gate(corpus, family, head):
    out = corpus.converted(corpus.hf_h5(family, head))
    report = _assert_passed_by_the_measured_gate(out)
    _assert_trained_tensors_exact(out, corpus.pytorch(family, 1, HEADS_POSITIONS), "roberta.")
    assert report["inputs"]["lengths"][0] == HEADS_POSITIONS  # a row at the maximum length


@pytest.mark.parametrize("head", ["base-model", "sequence-classification", "masked-lm"])
def test_exact_keras_hub_conversion_of_trained_weights_passes_the_default_gate(corpus, head):
    out = corpus.converted(corpus.keras_hub(head))
    _assert_passed_by_the_measured_gate(out)
    _assert_trained_tensors_exact(out, corpus.pytorch("roberta"), "roberta.")


@pytest.mark.parametrize("kind", ["pretraining", "classifier"])
def test_exact_tf1_conversion_of_trained_weights_passes_the_default_gate(corpus, kind):
    out = corpus.converted(corpus.tf1(kind))
    report = _assert_passed_by_the_measured_gate(out)
    assert report["inputs"]["lengths"][0] == 512  # the trained maximum length
    _assert_trained_tensors_exact(out, corpus.pytorch("bert"), "")


def test_roberta_base_sized_trained_model_passes_the_default_gate(corpus):
    """12 layers × 768 with the trained model's activation statistics, masked-LM logits over
    50,265 tokens: where a fixed 1e-5 fails exact conversions."""
    out = corpus.converted(corpus.hf_h5("roberta", "masked-lm", width=2))
    report = _assert_passed_by_the_measured_gate(out)
    assert len(report["outputs"]) == 14 and report["outputs"][-1]["shape"][-1] == 50265
    assert report["max_abs_diff"] > 1e-5  # the old fixed gate would have cried wolf here


def test_fixed_tolerance_given_by_the_user_decides_and_is_recorded(corpus, tmp_path):
    src = corpus.hf_h5("roberta", "masked-lm")
    out = copy_tree(corpus.converted(src), tmp_path / "out")
    code, _, err = run_cli(["verify", str(src), str(out), "--atol", "1e-7"])
    assert code == 1 and "atol 1e-07" in err.strip().splitlines()[-1]
    report = _parity(out)
    assert report["gate"] == {"kind": "fixed", "atol": 1e-7, "rtol": None}
    assert all(o["tolerance"] == 1e-7 for o in report["outputs"])
    code, _, err = run_cli(["verify", str(src), str(out), "--atol", "0", "--rtol", "1e-3"])
    assert code == 0, err
    assert _parity(out)["gate"] == {"kind": "fixed", "atol": 0.0, "rtol": 1e-3}


# --- mutations at real scale: each must fail (exit 1) and name where the damage first shows ---


def _verify_mutated(corpus, tmp_path, family, head, tensors=None, config=None) -> dict:
    src = corpus.hf_h5(family, head)
    out = mutated_copy(
        corpus.converted(src),
        tmp_path / "mutated",
        tensors,
        config and (lambda c: c.update(config)),
    )
    code, _, err = run_cli(["verify", str(src), str(out)])
    assert code == 1, err
    assert "parity failed: first divergence" in err and "Traceback" not in err
    return _parity(out)


def _swap_query_key(layer: int, prefix: str):
    attention = f"{prefix}encoder.layer.{layer}.attention.self."
    return swapped(attention + "query", attention + "key")


def _permute_one_head_in_query(layer: int, head: int, prefix: str):
    def mutate(t):
        for kind in ("weight", "bias"):
            name = f"{prefix}encoder.layer.{layer}.attention.self.query.{kind}"
            rows = np.arange(t[name].shape[0])
            size = t[name].shape[0] // 12
            block = rows[head * size : (head + 1) * size]
            rows[head * size : (head + 1) * size] = np.roll(block, 1)
            t[name] = np.ascontiguousarray(t[name][rows])

    return mutate


def _zero(name: str):
    def mutate(t):
        t[name] = np.zeros_like(t[name])

    return mutate


def _shift_positions(prefix: str):
    def mutate(t):
        name = f"{prefix}embeddings.position_embeddings.weight"
        t[name] = np.ascontiguousarray(np.roll(t[name], 1, axis=0))

    return mutate


MUTATIONS = {
    "query and key swapped in layer 2": (
        "roberta",
        "sequence-classification",
        dict(tensors=_swap_query_key(2, "roberta.")),
        "hidden_states[3]",
    ),
    "gelu → gelu_new": (
        "bert",
        "masked-lm",
        dict(config={"hidden_act": "gelu_new"}),
        "hidden_states[1]",
    ),
    "layer_norm_eps 1e-12 → 1e-5 (BERT)": (
        "bert",
        "sequence-classification",
        dict(config={"layer_norm_eps": 1e-5}),
        "hidden_states[0]",
    ),
    "layer_norm_eps 1e-5 → 1e-12 (RoBERTa)": (
        "roberta",
        "base-model",
        dict(config={"layer_norm_eps": 1e-12}),
        "hidden_states[0]",
    ),
    "position offset off by one": (
        "roberta",
        "token-classification",
        dict(tensors=_shift_positions("roberta.")),
        "hidden_states[0]",
    ),
    "one head's rows permuted inside query of layer 4": (
        "bert",
        "base-model",
        dict(tensors=_permute_one_head_in_query(4, 7, "")),
        "hidden_states[5]",
    ),
    "output bias of layer 5 zeroed": (
        "roberta",
        "question-answering",
        dict(tensors=_zero("roberta.encoder.layer.5.output.dense.bias")),
        "hidden_states[6]",
    ),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_real_scale_mutation_fails_at_the_right_first_divergence(corpus, tmp_path, mutation):
    family, head, change, first = MUTATIONS[mutation]
    report = _verify_mutated(corpus, tmp_path, family, head, **change)
    assert report["first_divergence"]["name"] == first
    index = report["first_divergence"]["index"]
    assert all(o["passed"] for o in report["outputs"][:index])
