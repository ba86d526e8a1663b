"""Shared fixtures: tiny checkpoints made by the real producers (transformers' TF classes)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import json  # noqa: E402
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


def staging_leftovers(out: Path) -> list[Path]:
    """The hidden staging dirs a run left beside `out` (none may remain once it has ended)."""
    return [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.tf2pt")]


def nothing_written(out: Path) -> bool:
    return not out.exists() and not staging_leftovers(out)


def read_json(path: Path):
    return json.loads(path.read_text())


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def mutated_copy(converted: Path, dst: Path, mutate_tensors=None, mutate_config=None) -> Path:
    """A copy of a converted output damaged the way real converters go wrong: `mutate_tensors`
    edits the state dict in place, `mutate_config` the config dict."""
    from safetensors.numpy import load_file, save_file

    out = copy_tree(converted, dst)
    if mutate_tensors:
        tensors = load_file(str(out / "model.safetensors"))
        mutate_tensors(tensors)
        save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    if mutate_config:
        config = json.loads((out / "config.json").read_text())
        mutate_config(config)
        (out / "config.json").write_text(json.dumps(config))
    return out


# --- keras-hub (Keras 3) sources ---

KERAS_HUB_TINY = dict(
    vocabulary_size=99,
    num_layers=2,
    num_heads=4,
    hidden_dim=32,
    intermediate_dim=37,
    max_sequence_length=38,
    dropout=0.0,
)
KERAS_HUB_CLASSES = {
    "base-model": "RobertaBackbone",
    "sequence-classification": "RobertaTextClassifier",
    "masked-lm": "RobertaMaskedLM",
}
KERAS_FORMS = ("model.keras", "model.weights.h5", "preset")


def randomize_keras_weights(model, seed: int) -> None:
    """Every model variable gets distinct random values (layer-norm scales around 1)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        base = 1.0 if w.path.endswith("gamma") else 0.0
        w.assign(base + rng.normal(0.0, 0.1, size=tuple(w.shape)).astype(np.float32))


def keras_inputs(rows: int, width: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, KERAS_HUB_TINY["vocabulary_size"], size=(rows, width)).astype(np.int32)
    return {"token_ids": ids, "padding_mask": np.ones_like(ids)}


def build_keras_hub_roberta(directory: Path, head: str, seed: int = 0) -> dict[str, Path]:
    """A keras-hub RoBERTa model for `head` with random weights, saved in all three forms; the
    classifier is first trained for one step so its files hold Adam's slots too."""
    import keras_hub

    backbone = keras_hub.models.RobertaBackbone(**KERAS_HUB_TINY)
    model = backbone
    if head == "sequence-classification":
        model = keras_hub.models.RobertaTextClassifier(
            backbone=backbone, num_classes=3, preprocessor=None, activation="softmax"
        )
    elif head == "masked-lm":
        model = keras_hub.models.RobertaMaskedLM(backbone=backbone, preprocessor=None)
    randomize_keras_weights(model, seed)
    if head == "sequence-classification":
        model.compile()
        model.fit(keras_inputs(4, 12, seed), np.array([0, 1, 2, 1]), batch_size=2, verbose=0)
    directory.mkdir(parents=True)
    model.save(str(directory / "model.keras"))
    model.save_weights(str(directory / "model.weights.h5"))
    model.save_to_preset(str(directory / "preset"))
    return {form: directory / form for form in KERAS_FORMS}


@pytest.fixture(scope="session")
def keras_hub_sources(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """head → form → path, for the three keras-hub heads, built once per session."""
    root = tmp_path_factory.mktemp("keras_hub")
    return {
        head: build_keras_hub_roberta(root / head, head, seed=10 + i)
        for i, head in enumerate(KERAS_HUB_CLASSES)
    }


@pytest.fixture(scope="session")
def keras_hub_converted(keras_hub_sources, tmp_path_factory) -> dict[tuple[str, str], Path]:
    """(head, form) → output of `tf2pt convert` (with parity verification)."""
    root = tmp_path_factory.mktemp("keras_hub_converted")
    outs = {}
    for head, forms in keras_hub_sources.items():
        for form, src in forms.items():
            out = root / f"{head}-{form}"
            code, _, err = run_cli(["convert", str(src), str(out)])
            assert code == 0, err
            outs[head, form] = out
    return outs


# --- BERT: transformers' TF classes and google-research/bert TF1 checkpoints ---

BERT_TINY = {  # TINY's dimensions; BERT's own defaults for ids and eps, two token types
    **{k: v for k, v in TINY.items() if not k.endswith("token_id") and k != "layer_norm_eps"},
    "type_vocab_size": 2,
}
BERT_HEAD_CLASSES = {
    "base-model": "BertModel",
    "pretraining": "BertForPreTraining",
    "masked-lm": "BertForMaskedLM",
    "causal-lm": "BertLMHeadModel",
    "next-sentence": "BertForNextSentencePrediction",
    "sequence-classification": "BertForSequenceClassification",
    "token-classification": "BertForTokenClassification",
    "question-answering": "BertForQuestionAnswering",
    "multiple-choice": "BertForMultipleChoice",
}


def build_tf_bert(directory: Path, class_name: str, seed: int = 0, **overrides):
    """A transformers TFBert* model with random weights, saved with save_pretrained."""
    import transformers

    config = transformers.BertConfig(**{**BERT_TINY, **overrides})
    model = getattr(transformers, "TF" + class_name)(config)
    model(model.dummy_inputs)
    randomize_tf_weights(model, seed)
    model.save_pretrained(str(directory))
    return model


def tf1_name(hf_keras_name: str) -> tuple[str, bool]:
    """google-research/bert's name for a TFBert* weight, and whether it is stored transposed.

    Written here from modeling.py / run_pretraining.py / run_classifier.py, independently of the
    converter's tables, so the tests check the tables rather than repeat them."""
    name = hf_keras_name.split("/", 1)[1].removesuffix(":0").replace("layer_._", "layer_")
    if name.startswith("bert/embeddings/") and "LayerNorm" not in name:
        name = name.rsplit("/", 1)[0]  # Keras embedding layers add /weight or /embeddings
    head_names = {
        "mlm___cls/predictions/bias": ("cls/predictions/output_bias", False),
        "nsp___cls/seq_relationship/kernel": ("cls/seq_relationship/output_weights", True),
        "nsp___cls/seq_relationship/bias": ("cls/seq_relationship/output_bias", False),
        "classifier/kernel": ("output_weights", True),
        "classifier/bias": ("output_bias", False),
    }
    if name in head_names:
        return head_names[name]
    return name.replace("mlm___cls/", "cls/"), False


def save_tf1_checkpoint(
    model, directory: Path, step: int = 100, with_optimizer: bool = True
) -> Path:
    """The weights of a TFBert* model written as a google-research/bert TF1 checkpoint by TF's
    own Saver, with AdamWeightDecayOptimizer's slots (`…/adam_m`, `…/adam_v`) and global_step,
    plus bert_config.json and vocab.txt. Returns the checkpoint directory."""
    import tensorflow as tf

    variables = {}
    for w in model.weights:
        name, transposed = tf1_name(w.name)
        value = w.numpy()
        variables[name] = value.T if transposed else value
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(step)
    graph = tf.Graph()
    with graph.as_default():
        for name, value in variables.items():
            tf.compat.v1.get_variable(name, initializer=tf.constant(value))
            if with_optimizer:
                for slot in ("adam_m", "adam_v"):
                    noise = rng.normal(0, 1e-3, size=value.shape).astype(np.float32)
                    tf.compat.v1.get_variable(f"{name}/{slot}", initializer=tf.constant(noise))
        tf.compat.v1.train.get_or_create_global_step()
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(directory / "model.ckpt"), global_step=step)
    config = model.config
    bert_config = {  # the keys google-research/bert's BertConfig writes
        "attention_probs_dropout_prob": config.attention_probs_dropout_prob,
        "hidden_act": "gelu",
        "hidden_dropout_prob": config.hidden_dropout_prob,
        "hidden_size": config.hidden_size,
        "initializer_range": config.initializer_range,
        "intermediate_size": config.intermediate_size,
        "max_position_embeddings": config.max_position_embeddings,
        "num_attention_heads": config.num_attention_heads,
        "num_hidden_layers": config.num_hidden_layers,
        "type_vocab_size": config.type_vocab_size,
        "vocab_size": config.vocab_size,
    }
    (directory / "bert_config.json").write_text(json.dumps(bert_config, indent=2))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += [f"tok{i}" for i in range(config.vocab_size - len(vocab))]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return directory


TF1_KINDS = {  # kind → the TFBert* class whose weights it holds
    "pretraining": "BertForPreTraining",
    "classifier": "BertForSequenceClassification",
    "encoder": "BertModel",
}


@pytest.fixture(scope="session")
def tf1_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """google-research/bert TF1 checkpoints: pretraining (MLM + NSP), a 3-label run_classifier
    fine-tune, and an encoder alone. Built from TFBert* weights with gelu_new, which is what
    modeling.py's "gelu" computes."""
    root = tmp_path_factory.mktemp("tf1")
    out = {}
    for i, (kind, cls) in enumerate(TF1_KINDS.items()):
        model = build_tf_bert(
            root / f"{kind}-hf", cls, seed=30 + i, hidden_act="gelu_new", num_labels=3
        )
        out[kind] = save_tf1_checkpoint(model, root / kind)
    return out


@pytest.fixture(scope="session")
def tf1_converted(tf1_checkpoints, tmp_path_factory):
    root = tmp_path_factory.mktemp("tf1_converted")
    outs = {}
    for kind, src in tf1_checkpoints.items():
        code, _, err = run_cli(["convert", str(src), str(root / kind)])
        assert code == 0, err
        outs[kind] = root / kind
    return outs


# --- real trained weights (tests/real_corpus.py) ---


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """Real-scale sources and their conversions, built on first use, shared by every test."""
    from .real_corpus import RealCorpus

    return RealCorpus(tmp_path_factory.mktemp("real"))
