"""Shared fixtures: tiny checkpoints made by the real producers (transformers' TF classes)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from converter.cli import main  # noqa: E402

HEAD_CLASSES = {
    "base-model": "RobertaModel",
    "masked-lm": "RobertaForMaskedLM",
    "causal-lm": "RobertaForCausalLM",
    "sequence-classification": "RobertaForSequenceClassification",
    "token-classification": "RobertaForTokenClassification",
    "question-answering": "RobertaForQuestionAnswering",
    "multiple-choice": "RobertaForMultipleChoice",
}

TINY = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=40,
    type_vocab_size=1,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
    layer_norm_eps=1e-5,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def randomize_tf_weights(model, seed: int) -> None:
    """Overwrite every weight with distinct random values, so a misplaced zero bias or unit
    gamma cannot hide behind the initialiser's defaults."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape = tuple(w.shape)
        base = 1.0 if "gamma" in w.name else 0.0
        w.assign(base + rng.normal(0.0, 0.1, size=shape).astype(np.float32))


def build_tf_roberta(
    directory: Path, class_name: str, seed: int = 0, save_kwargs=None, **overrides
) -> Path:
    import transformers

    config = transformers.RobertaConfig(**{**TINY, **overrides})
    model = getattr(transformers, "TF" + class_name)(config)
    model(model.dummy_inputs)
    randomize_tf_weights(model, seed)
    model.save_pretrained(str(directory), **(save_kwargs or {}))
    return directory


@pytest.fixture(scope="session")
def tf_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """One saved TF checkpoint per RoBERTa head, built once per session."""
    root = tmp_path_factory.mktemp("tf_checkpoints")
    return {
        head: build_tf_roberta(root / head, cls, seed=i)
        for i, (head, cls) in enumerate(HEAD_CLASSES.items())
    }


@pytest.fixture(scope="session")
def converted(tf_checkpoints, tmp_path_factory) -> dict[str, Path]:
    """Each head converted (and verified) once by the CLI, for tests that only read outputs."""
    root = tmp_path_factory.mktemp("converted")
    outs = {}
    for head, src in tf_checkpoints.items():
        code, _, err = run_cli(["convert", str(src), str(root / head)])
        assert code == 0, err
        outs[head] = root / head
    return outs


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """Run `tf2pt` in-process (TF and torch stay imported between calls); capture its output."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
