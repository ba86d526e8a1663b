"""Parity failures explain themselves, on real trained weights (tests/real_corpus.py).

Each real conversion bug is injected where it really happens — into the converted output or its
config (a converter's mistake), or into the source (a TF model that does not compute what its
tensors suggest) — and the diagnosis must name it: its best passing hypothesis is the bug's true
inverse, checked here by undoing the bug with this file's own numpy (not the engine's op code)
and comparing with the original conversion bit for bit. Corruptions no hypothesis describes must
get no passing hypothesis at all. One TF run per source serves every mutation of it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from converter.plan.analysis import open_with_table, plan_source
from converter.verify.parity import check_converted, parity_inputs
from converter.verify.runners import declared_runner
from converter.verify.torch_side import TorchSide

from .conftest import run_cli
from .h5edit import scale_weight

BASE = "tf2pt convert SRC OUT"
TANH_GELU = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")  # transformers' three names for it


class Reference:
    """One run of a source's TF model, judged against any number of converted models."""

    def __init__(self, src: Path, like: Path):
        config = json.loads((like / "config.json").read_text())
        source, table = open_with_table(src, None)
        head = table.head_for_class(config["architectures"][0])
        self.analysis = plan_source(source, table, head=head)
        self.inputs = parity_inputs(self.analysis)
        runner = declared_runner(self.analysis.plan)(source, self.analysis.plan)
        self.outputs = [runner.run(batch) for batch in self.inputs.batches]

    def check(self, out: Path):
        plan = self.analysis.plan
        side = TorchSide(out, plan.class_name, self.inputs.batches, own_process=False)
        try:
            return check_converted(plan, out, self.inputs, self.outputs, side, fix_command=BASE)
        finally:
            side.close()


@pytest.fixture(scope="module")
def sources(corpus):
    """name → (source, its conversion, its TF reference run), made on first use."""
    built: dict[str, tuple[Path, Path, Reference]] = {}
    makers = {
        "bert-h5": lambda: corpus.hf_h5("bert", "masked-lm"),
        "roberta-h5": lambda: corpus.hf_h5("roberta", "sequence-classification"),
        "bert-tf1": lambda: corpus.tf1("pretraining"),
        "model-garden": corpus.model_garden,
        "roberta-base-size": lambda: corpus.hf_h5("roberta", "masked-lm", width=2),
    }

    def get(name: str) -> tuple[Path, Path, Reference]:
        if name not in built:
            src = makers[name]()
            out = corpus.converted(src)
            built[name] = (src, out, Reference(src, out))
        return built[name]

    return get


def _damaged(out: Path, dst: Path, tensors=None, config: dict | None = None) -> Path:
    """A copy of the conversion `out` with a bug injected (`tensors` edits the state dict,
    `config` updates config.json). Weights left as they are are hard-linked, not copied: the
    roberta-base-sized ones are 476 MB, and nothing here writes to them."""

    def link_weights(src: str, dest: str) -> None:
        if Path(src).name == "model.safetensors" and tensors is None:
            os.link(src, dest)
        else:
            shutil.copy2(src, dest)

    shutil.copytree(out, dst, copy_function=link_weights)
    return _edit(dst, tensors, config)


def _edit(dst: Path, tensors, config: dict | None) -> Path:
    """The bug written into the copy (a rewritten file, never one shared with `out`)."""
    if tensors is not None:
        from safetensors.numpy import save_file

        state = load_file(str(dst / "model.safetensors"))
        tensors(state)
        save_file(state, str(dst / "model.safetensors"), metadata={"format": "pt"})
    if config:
        settings = json.loads((dst / "config.json").read_text())
        (dst / "config.json").write_text(json.dumps({**settings, **config}))
    return dst


# --- injected bugs, each written from what the models compute, not from the engine ---


def _prefix(family: str) -> str:
    return {"bert-h5": "bert.", "roberta-h5": "roberta.", "bert-tf1": "bert."}.get(family, "")


def _swap(a: str, b: str, parts=("weight", "bias")):
    def mutate(t):
        for part in parts:
            t[f"{a}.{part}"], t[f"{b}.{part}"] = t[f"{b}.{part}"], t[f"{a}.{part}"]

    return mutate


def _transpose(name: str):
    def mutate(t):
        t[name] = np.ascontiguousarray(t[name].T)

    return mutate


def _rows_reordered(name: str, heads: int, read_as: str):
    """A q/k/v layer whose output rows (weight and bias) were written reordered: the true rows
    read as [heads, head_dim] (`read_as` "heads") or [head_dim, heads] and transposed — the
    first is what a converter writes when it flattens an EinsumDense kernel with its (heads,
    head_dim) axes swapped, the second the inverse mistake."""

    def mutate(t):
        for part in ("weight", "bias"):
            w = t[f"{name}.{part}"]
            size = w.shape[0] // heads
            split = (heads, size) if read_as == "heads" else (size, heads)
            moved = w.reshape(*split, -1).transpose(1, 0, 2).reshape(w.shape)
            t[f"{name}.{part}"] = np.ascontiguousarray(moved)

    return mutate


def _noise(name: str, share: float, seed: int = 0):
    def mutate(t):
        rng = np.random.default_rng(seed)
        w = t[name]
        t[name] = (w + rng.normal(0, share * w.std(), size=w.shape)).astype(w.dtype)

    return mutate


def _roll_positions(name: str):
    def mutate(t):
        t[name] = np.ascontiguousarray(np.roll(t[name], 1, axis=0))

    return mutate


def _both(*mutations):
    def mutate(t):
        for m in mutations:
            m(t)

    return mutate


def _undo(change: dict, tensors: dict[str, np.ndarray], heads: int) -> dict[str, np.ndarray]:
    """A diagnosis's weight change applied with this file's own numpy, as the ops are documented
    in mappings/shared/hypotheses.yaml (what `tf2pt convert --patch` is to do)."""
    out = dict(tensors)
    names, op = change["tensors"], change["op"]
    if op == "swap":
        for a, b in zip(names[::2], names[1::2], strict=True):
            out[a], out[b] = out[b], out[a]
        return out
    for name in names:
        w = out[name]
        if op == "transpose":
            out[name] = w.T
        elif op == "zero":
            out[name] = np.zeros_like(w)
        else:
            rows = w.shape[0]
            split = (heads, rows // heads) if op == "permute_heads" else (rows // heads, heads)
            out[name] = w.reshape(*split, -1).transpose(1, 0, 2).reshape(w.shape)
    return out


# name: (source, tensor mutation, config mutation, changes that are the bug's true inverse)
L = "encoder.layer"
SINGLE_BUGS = {
    "config says gelu_new, the model computes gelu (HF h5)": (
        "bert-h5",
        None,
        {"hidden_act": "gelu_new"},
        [{"config": {"hidden_act": "gelu"}}],
    ),
    "config says gelu, the model computes gelu_new (TF1)": (
        "bert-tf1",
        None,
        {"hidden_act": "gelu"},
        [{"config": {"hidden_act": v}} for v in TANH_GELU],
    ),
    "config says gelu, the model computes gelu_new (Model Garden)": (
        "model-garden",
        None,
        {"hidden_act": "gelu"},
        [{"config": {"hidden_act": v}} for v in TANH_GELU],
    ),
    "layer_norm_eps 1e-12 written as 1e-5 (BERT, TF1)": (
        "bert-tf1",
        None,
        {"layer_norm_eps": 1e-5},
        [{"config": {"layer_norm_eps": 1e-12}}],
    ),
    "layer_norm_eps 1e-5 written as 1e-12 (RoBERTa, HF h5)": (
        "roberta-h5",
        None,
        {"layer_norm_eps": 1e-12},
        [{"config": {"layer_norm_eps": 1e-5}}],
    ),
    "position offset: pad_token_id 1 written as 0 (RoBERTa)": (
        "roberta-h5",
        None,
        {"pad_token_id": 0},
        [{"config": {"pad_token_id": 1}}],
    ),
    "query and key swapped in layer 2 (RoBERTa)": (
        "roberta-h5",
        _swap(f"roberta.{L}.2.attention.self.query", f"roberta.{L}.2.attention.self.key"),
        None,
        None,  # the engine's change must undo it exactly: checked on the tensors
    ),
    "query and key swapped in every layer: a table bug (Model Garden)": (
        "model-garden",
        _both(
            *(
                _swap(f"{L}.{i}.attention.self.query", f"{L}.{i}.attention.self.key")
                for i in range(6)
            )
        ),
        None,
        None,
    ),
    "attention output kernel of layer 3 not transposed (TF1)": (
        "bert-tf1",
        _transpose(f"bert.{L}.3.attention.output.dense.weight"),
        None,
        None,
    ),
    "query rows of layer 1 reordered, heads axes swapped (HF h5)": (
        "bert-h5",
        _rows_reordered(f"bert.{L}.1.attention.self.query", 12, "heads"),
        None,
        None,
    ),
    "query rows of layer 4 reordered the other way (Model Garden)": (
        "model-garden",
        _rows_reordered(f"{L}.4.attention.self.query", 12, "head_dim"),
        None,
        None,
    ),
}


def _assert_true_inverse(best, mutated_out: Path, original_out: Path, accepted, heads: int):
    if accepted is not None:
        assert best.change in accepted, best.change
        return
    assert set(best.change) == {"tensors", "op"}, best.change
    mutated = load_file(str(mutated_out / "model.safetensors"))
    original = load_file(str(original_out / "model.safetensors"))
    undone = _undo(best.change, mutated, heads)
    for name in best.change["tensors"]:
        np.testing.assert_array_equal(undone[name], original[name], err_msg=name)


@pytest.mark.parametrize("bug", list(SINGLE_BUGS))
def test_a_single_bug_is_named_by_its_true_inverse(sources, tmp_path, bug):
    source, tensors, config, accepted = SINGLE_BUGS[bug]
    _, out, reference = sources(source)
    mutated = _damaged(out, tmp_path / "out", tensors, config)
    checked = reference.check(mutated)
    assert not all(d.passed for d in checked.diffs)  # the bug is real
    run = checked.diagnosis
    assert run is not None and not run.error
    assert all(not d.error for d in run.entries), [d.error for d in run.entries if d.error]
    best = run.best
    assert best is not None, [(d.hypothesis, d.least_margin) for d in run.entries[:5]]
    assert best.passes and (best.least_margin is None or best.least_margin >= 1)
    _assert_true_inverse(best, mutated, out, accepted, 12)
    for fix in run.fixes:  # every change offered undoes the bug, not only the best
        _assert_true_inverse(fix, mutated, out, accepted, 12)


def test_a_bias_the_source_does_not_apply_is_named(sources, corpus, tmp_path):
    """The TF model adds no bias in layer 5's feed-forward output (zero in the source), while the
    conversion kept a trained one: the diagnosis says to zero it."""
    src, out, _ = sources("bert-h5")
    damaged = shutil.copytree(src, tmp_path / "src")
    scale_weight(damaged / "tf_model.h5", "bert", "layer_._5/output/dense/bias:0", 0.0)
    checked = Reference(damaged, out).check(out)
    best = checked.diagnosis.best
    assert best is not None and best.passes
    assert best.change == {"tensors": [f"bert.{L}.5.output.dense.bias"], "op": "zero"}
    assert len(checked.diagnosis.fixes) == 1


def test_token_types_the_source_ignores_are_named(sources, tmp_path):
    """A TF model whose two token-type rows are equal computes as if fed no segment ids: the
    conversion (with the trained rows) matches it only when fed none."""
    src, out, _ = sources("bert-h5")
    damaged = shutil.copytree(src, tmp_path / "src")
    import h5py

    with h5py.File(damaged / "tf_model.h5", "r+") as h5:
        names = [n for n in _h5_names(h5) if "token_type_embeddings" in n]
        assert len(names) == 2  # the masked-LM h5 stores the embeddings twice
        for name in names:
            h5[name][1] = h5[name][0]
    checked = Reference(damaged, out).check(out)
    best = checked.diagnosis.best
    assert best is not None and best.change == {"inputs": {"drop": ["token_type_ids"]}}
    assert best.command(BASE) is None  # no option changes what the TF model reads


def _h5_names(group) -> list[str]:
    names = []
    group.visit(lambda n: names.append(n) if hasattr(group[n], "shape") else None)
    return names


UNEXPLAINED = {
    "random noise on a feed-forward kernel (HF h5)": (
        "bert-h5",
        _noise(f"bert.{L}.2.intermediate.dense.weight", 0.05),
        None,
    ),
    "random noise on the query kernel (Model Garden)": (
        "model-garden",
        _noise(f"{L}.0.attention.self.query.weight", 0.05),
        None,
    ),
    "two bugs at once: gelu_new and query/key swapped in layer 3 (RoBERTa)": (
        "roberta-h5",
        _swap(f"roberta.{L}.3.attention.self.query", f"roberta.{L}.3.attention.self.key"),
        {"hidden_act": "gelu_new"},
    ),
    "two bugs at once: eps and a transposed kernel (TF1)": (
        "bert-tf1",
        _transpose(f"bert.{L}.0.attention.self.value.weight"),
        {"layer_norm_eps": 1e-5},
    ),
    "position table shifted by one row (RoBERTa)": (
        "roberta-h5",
        _roll_positions("roberta.embeddings.position_embeddings.weight"),
        None,
    ),
}


@pytest.mark.parametrize("corruption", list(UNEXPLAINED))
def test_a_corruption_no_hypothesis_describes_gets_no_fix(sources, tmp_path, corruption):
    source, tensors, config = UNEXPLAINED[corruption]
    _, out, reference = sources(source)
    mutated = _damaged(out, tmp_path / "out", tensors, config)
    checked = reference.check(mutated)
    assert not all(d.passed for d in checked.diffs)
    run = checked.diagnosis
    assert run.entries and not run.error
    assert run.fixes == [], [d.hypothesis for d in run.fixes]


# --- at roberta-base size: named, and within the cost of one more verify ---

EVERY_LAYER_QK_SWAP = _both(
    *(
        _swap(f"roberta.{L}.{i}.attention.self.query", f"roberta.{L}.{i}.attention.self.key")
        for i in range(12)
    )
)
BASE_BUGS = {
    "eps written as 1e-12": (
        None,
        {"layer_norm_eps": 1e-12},
        [{"config": {"layer_norm_eps": 1e-5}}],
    ),
    "query and key swapped in every layer": (EVERY_LAYER_QK_SWAP, None, None),
}


@pytest.mark.parametrize("bug", list(BASE_BUGS))
def test_roberta_base_sized_bug_is_named_cheaply(sources, tmp_path, bug):
    tensors, config, accepted = BASE_BUGS[bug]
    _, out, reference = sources("roberta-base-size")
    mutated = _damaged(out, tmp_path / "out", tensors, config)
    checked = reference.check(mutated)
    run = checked.diagnosis
    best = run.best
    assert best is not None and best.passes
    _assert_true_inverse(best, mutated, out, accepted, 12)
    # The cost: wrong hypotheses stop at the first divergent output, so few run to the end.
    complete = [d for d in run.entries if d.stopped_at is None and not d.error]
    assert len(complete) <= 3, [d.hypothesis for d in complete]
    shutil.rmtree(mutated)  # 476 MB


# --- end to end: the command line says it ---


def test_verify_prints_the_cause_and_the_command_and_reports_it(sources, tmp_path):
    src, out, _ = sources("bert-h5")
    mutated = _damaged(out, tmp_path / "out", config={"hidden_act": "gelu_new"})
    code, _, err = run_cli(["verify", str(src), str(mutated)])
    assert code == 1 and "Traceback" not in err
    command = f"tf2pt convert {src} {mutated} --force --set hidden_act=gelu"
    last = err.strip().splitlines()[-1]
    assert "likely cause: the activation is gelu (the exact erf form)" in last
    assert command in last
    report = json.loads((mutated / "parity_report.json").read_text())
    top = report["diagnosis"][0]
    assert top["passes"] and top["change"] == {"config": {"hidden_act": "gelu"}}
    assert top["command"] == command and top["least_margin"] >= 1
    assert all(not d["passes"] for d in report["diagnosis"][1:])
    md = (mutated / "parity_report.md").read_text()
    assert md.index("**Likely cause:**") < md.index("- model:")
    assert command in md


def test_failed_convert_leaves_the_diagnosis_beside_out(sources, tmp_path, monkeypatch):
    """A converter that writes the wrong activation (made so here by wrapping its config
    writer): `convert` fails, and OUT.parity-failed/ and the error name the cause with the
    command for OUT itself."""
    import converter.pipeline as pipeline

    written = pipeline.output_config

    def wrong_activation(*args, **kwargs):
        config, notes = written(*args, **kwargs)
        return {**config, "hidden_act": "gelu_new"}, notes

    monkeypatch.setattr(pipeline, "output_config", wrong_activation)
    src, _, _ = sources("bert-h5")
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(src), str(out)])
    assert code == 1 and not out.exists()
    report = json.loads((tmp_path / "out.parity-failed" / "parity_report.json").read_text())
    top = report["diagnosis"][0]
    assert top["change"] == {"config": {"hidden_act": "gelu"}}
    assert top["command"] == f"tf2pt convert {src} {out} --set hidden_act=gelu"
    assert top["command"] in err.strip().splitlines()[-1]


def test_the_command_diagnoses_in_its_pytorch_child_process(converted, tf_checkpoints, tmp_path):
    """`tf2pt verify` as a user runs it: the PyTorch half lives in a spawned child, which keeps
    its float32 model for the trials after sending its runs (a tiny model: the mechanism)."""
    import subprocess
    import sys

    prefix = "roberta.encoder.layer.1.attention.self."
    mutated = _damaged(
        converted["sequence-classification"],
        tmp_path / "out",
        _swap(prefix + "query", prefix + "key"),
    )
    src = tf_checkpoints["sequence-classification"]
    tf2pt = Path(sys.executable).with_name("tf2pt")
    done = subprocess.run(
        [str(tf2pt), "verify", str(src), str(mutated)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    q, k = prefix + "query", prefix + "key"
    fix = f"--patch swap={q}.weight,{k}.weight --patch swap={q}.bias,{k}.bias"
    assert f"tf2pt convert {src} {mutated} --force {fix}" in done.stderr.strip().splitlines()[-1]
    assert "diagnosis: likely cause: the query projection and the key projection of layer 1" in (
        done.stderr
    )
