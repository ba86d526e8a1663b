"""Shared fixtures: tiny checkpoints made by the real producers (transformers' TF classes)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One core per xdist worker (`make test` runs one per core): thread pools that spread
    # over both cores make the workers' threads wait on each other, costing more time, not
    # less. Set before TensorFlow or torch is imported; their child processes inherit it.
    for _threads in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(_threads, "1")

import hashlib  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from converter.cli import main  # noqa: E402

from .fixture_cache import assert_untouched, cached, once_per_run, run_root  # noqa: E402
from .hf5 import Hf5  # noqa: E402
from .producers import (  # noqa: E402, F401 - TINY, BERT_TINY, … are imported from here too
    BERT_TINY,
    TINY,
    build_every_head,
    build_tf_model,
    head_classes,
    randomize_tf_weights,
    settings_as,
    source_classes,
)

HEAD_CLASSES = head_classes("roberta")


@pytest.fixture(autouse=True)
def _shared_fixtures_stay_untouched():
    """Fail the test that wrote into a fixture shared by the session, the run or the cache."""
    yield
    assert_untouched()


@pytest.fixture(scope="session")
def hf5(tmp_path_factory):
    """transformers 5 (`.venv-hf5`), one process for the session's scripts (tests/hf5.py)."""
    runner = Hf5(tmp_path_factory.mktemp("hf5") / "stderr.log")
    yield runner
    runner.close()


def build_tf_roberta(
    directory: Path, class_name: str, seed: int = 0, save_kwargs=None, **overrides
) -> Path:
    build_tf_model("roberta", class_name, directory, seed, save_kwargs, **overrides)
    return directory


def _name(key) -> str:
    return "-".join(key) if isinstance(key, tuple) else key


def convert_once(tmp_path_factory, name: str, sources: dict, args: dict | None = None) -> dict:
    """Each source converted (and verified) by the CLI once per run, for tests that only read
    the outputs: key → output dir. `args` adds CLI options per key; the run's stderr is kept
    beside each output (`cli_stderr`). Workers share the outputs of the same source paths
    (cached sources); a worker's own sources get their own conversion."""

    def convert_all(root: Path) -> None:
        root.mkdir()
        for key, src in sources.items():
            out = root / _name(key)
            code, _, err = run_cli(["convert", str(src), str(out), *(args or {}).get(key, [])])
            assert code == 0, err
            out.with_name(out.name + ".stderr").write_text(err)

    asked = json.dumps([[_name(k), str(v), (args or {}).get(k, [])] for k, v in sources.items()])
    digest = hashlib.sha256(asked.encode()).hexdigest()[:12]
    root = once_per_run(tmp_path_factory, f"{name}-{digest}", convert_all)
    return {key: root / _name(key) for key in sources}


def conversions_of(sources: str):
    """A session fixture: each source of the fixture named `sources` converted (and verified)
    once per run by `convert_once`, for tests that only read the outputs: key → output dir."""

    @pytest.fixture(scope="session")
    def conversions(request, tmp_path_factory) -> dict:
        found = request.getfixturevalue(sources)
        return convert_once(tmp_path_factory, request.fixturename, found)

    return conversions


def cli_stderr(out: Path) -> str:
    """What `tf2pt convert` said on stderr while writing `out` (a `convert_once` output)."""
    return out.with_name(out.name + ".stderr").read_text()


@pytest.fixture(scope="session")
def tf_checkpoints() -> dict[str, Path]:
    """One saved TF checkpoint per RoBERTa head (seeds 0, 1, …)."""
    root = cached("tf-roberta-heads", build_every_head, arch="roberta", first_seed=0)
    return {head: root / head for head in HEAD_CLASSES}


converted = conversions_of("tf_checkpoints")  # each head converted (and verified) once


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

KERAS_HUB_TINY = {  # TINY's dimensions under keras-hub's names; it drops RoBERTa's 2 pad rows
    **settings_as(
        TINY,
        vocabulary_size="vocab_size",
        num_layers="num_hidden_layers",
        num_heads="num_attention_heads",
        hidden_dim="hidden_size",
        intermediate_dim="intermediate_size",
    ),
    "max_sequence_length": TINY["max_position_embeddings"] - 2,
    "dropout": 0.0,
}
KERAS_HUB_CLASSES = source_classes("roberta", "keras-hub")  # head → keras-hub class
KERAS_FORMS = ("model.keras", "model.weights.h5", "preset")
KERAS_HUB_TASK_SETTINGS = {"sequence-classification": {"num_classes": 3, "activation": "softmax"}}


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
    if head != "base-model":
        task = getattr(keras_hub.models, KERAS_HUB_CLASSES[head])
        model = task(backbone=backbone, preprocessor=None, **KERAS_HUB_TASK_SETTINGS.get(head, {}))
    randomize_keras_weights(model, seed)
    if head == "sequence-classification":
        model.compile()
        model.fit(keras_inputs(4, 12, seed), np.array([0, 1, 2, 1]), batch_size=2, verbose=0)
    directory.mkdir(parents=True)
    model.save(str(directory / "model.keras"))
    model.save_weights(str(directory / "model.weights.h5"))
    model.save_to_preset(str(directory / "preset"))
    return {form: directory / form for form in KERAS_FORMS}


def build_keras_hub_heads(root: Path, first_seed: int) -> None:
    """`build_keras_hub_roberta` for each keras-hub head, `root/<head>`."""
    for i, head in enumerate(KERAS_HUB_CLASSES):
        build_keras_hub_roberta(root / head, head, seed=first_seed + i)


@pytest.fixture(scope="session")
def keras_hub_sources() -> dict[str, dict[str, Path]]:
    """head → form → path, for the three keras-hub heads."""
    root = cached("keras-hub-heads", build_keras_hub_heads, first_seed=10)
    return {head: {form: root / head / form for form in KERAS_FORMS} for head in KERAS_HUB_CLASSES}


@pytest.fixture(scope="session")
def keras_hub_converted(keras_hub_sources, tmp_path_factory) -> dict[tuple[str, str], Path]:
    """(head, form) → output of `tf2pt convert` (with parity verification)."""
    sources = {(h, f): src for h, forms in keras_hub_sources.items() for f, src in forms.items()}
    return convert_once(tmp_path_factory, "keras_hub_converted", sources)


# --- BERT: transformers' TF classes and google-research/bert TF1 checkpoints ---

BERT_HEAD_CLASSES = head_classes("bert")


def build_tf_bert(directory: Path, class_name: str, seed: int = 0, **overrides):
    """A transformers TFBert* model with random weights, saved with save_pretrained."""
    return build_tf_model("bert", class_name, directory, seed, **overrides)


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


def bert_config_json(config) -> dict:
    """The keys google-research/bert's BertConfig writes (bert_config.json), from a
    transformers config; its "gelu" is modeling.py's, the tanh form (transformers' gelu_new)."""
    return {
        "attention_probs_dropout_prob": config.attention_probs_dropout_prob,
        "hidden_act": "gelu",
        **settings_as(
            config.to_dict(),
            "hidden_dropout_prob",
            "hidden_size",
            "initializer_range",
            "intermediate_size",
            "max_position_embeddings",
            "num_attention_heads",
            "num_hidden_layers",
            "type_vocab_size",
            "vocab_size",
        ),
    }


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
    (directory / "bert_config.json").write_text(json.dumps(bert_config_json(config), indent=2))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += [f"tok{i}" for i in range(config.vocab_size - len(vocab))]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return directory


TF1_HEADS = {  # kind of google-research/bert checkpoint → the head whose weights it holds
    "pretraining": "pretraining",
    "classifier": "sequence-classification",
    "encoder": "base-model",
}
TF1_KINDS = {kind: BERT_HEAD_CLASSES[head] for kind, head in TF1_HEADS.items()}  # → TFBert* class


def build_tf1_checkpoints(root: Path, first_seed: int) -> None:
    """Per kind, `root/<kind>-hf` (the TFBert* save) and `root/<kind>`, its TF1 checkpoint."""
    for i, (kind, cls) in enumerate(TF1_KINDS.items()):
        model = build_tf_bert(
            root / f"{kind}-hf", cls, seed=first_seed + i, hidden_act="gelu_new", num_labels=3
        )
        save_tf1_checkpoint(model, root / kind)


@pytest.fixture(scope="session")
def tf1_checkpoints() -> dict[str, Path]:
    """google-research/bert TF1 checkpoints: pretraining (MLM + NSP), a 3-label run_classifier
    fine-tune, and an encoder alone. Built from TFBert* weights with gelu_new, which is what
    modeling.py's "gelu" computes."""
    root = cached("tf1-bert", build_tf1_checkpoints, first_seed=30)
    return {kind: root / kind for kind in TF1_KINDS}


tf1_converted = conversions_of("tf1_checkpoints")


# --- real trained weights (tests/real_corpus.py) ---


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """Real-scale sources and their conversions, built on first use, shared by every test and
    by the run's workers."""
    from .real_corpus import RealCorpus

    return RealCorpus(run_root(tmp_path_factory) / "real")
