"""ELECTRA sources made by the real producers: transformers' TFElectra* classes (tf_model.h5), and
google-research/electra TF1 checkpoints written by TF's own Saver from TFElectra* weights.

The TF1 names are written here from the release's code (model/modeling.py, run_pretraining.py),
independently of the converter's tables: `electra/embeddings/word_embeddings` (no `/weight`),
`electra/encoder/layer_N/…`, `electra/embeddings_project`, `discriminator_predictions/dense` and
`…/dense_1` (two unnamed tf.layers.dense), the generator under `generator/…` sharing the
discriminator's `electra/embeddings/…`, and its `generator_predictions/{dense,LayerNorm,
output_bias}`. The release ships no config file: nothing but the checkpoint and vocab.txt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .conftest import randomize_tf_weights

ELECTRA_TINY = dict(
    vocab_size=99,
    embedding_size=16,  # ≠ hidden_size: the embeddings are projected, as in ELECTRA-small
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=40,
    type_vocab_size=2,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)
ELECTRA_HEAD_CLASSES = {
    "base-model": "ElectraModel",
    "pretraining": "ElectraForPreTraining",
    "masked-lm": "ElectraForMaskedLM",
    "sequence-classification": "ElectraForSequenceClassification",
    "token-classification": "ElectraForTokenClassification",
    "question-answering": "ElectraForQuestionAnswering",
    "multiple-choice": "ElectraForMultipleChoice",
}


def build_tf_electra(directory: Path | None, class_name: str, seed: int = 0, **overrides):
    """A transformers TFElectra* model with random weights, saved with save_pretrained when a
    directory is given."""
    import transformers

    config = transformers.ElectraConfig(**{**ELECTRA_TINY, **overrides})
    model = getattr(transformers, "TF" + class_name)(config)
    model(model.dummy_inputs)
    randomize_tf_weights(model, seed)
    if directory is not None:
        model.save_pretrained(str(directory))
    return model


# --- google-research/electra TF1 checkpoints ---

# TFElectra* weight name (after the model scope) → the release's name; "" drops the weight.
DISCRIMINATOR_NAMES = {
    "discriminator_predictions/dense_prediction/": "discriminator_predictions/dense_1/",
}
GENERATOR_NAMES = {
    "electra/embeddings/": "",  # the generator looks up the discriminator's tables
    "electra/": "generator/",  # its own encoder and embeddings_project
    "generator_lm_head/bias": "generator_predictions/output_bias",
}


def _release_name(keras_name: str, renames: dict[str, str]) -> str:
    name = keras_name.split("/", 1)[1].removesuffix(":0").replace("layer_._", "layer_")
    if "/embeddings/" in name and "LayerNorm" not in name:
        name = name.rsplit("/", 1)[0]  # Keras embedding layers add /weight or /embeddings
    for old, new in renames.items():
        if name.startswith(old):
            return "" if not new else new + name.removeprefix(old)
    return name


def release_variables(discriminator, generator=None) -> dict[str, np.ndarray]:
    """The variables run_pretraining.py saves for this discriminator (TFElectraForPreTraining)
    and generator (TFElectraForMaskedLM, whose word/position/type tables must equal the
    discriminator's: the release shares them)."""
    out = {_release_name(w.name, DISCRIMINATOR_NAMES): w.numpy() for w in discriminator.weights}
    if generator is not None:
        for w in generator.weights:
            name = _release_name(w.name, GENERATOR_NAMES)
            if name and not name.startswith("generator_lm_head/"):  # its copy of the tables
                out[name] = w.numpy()
    return out


def write_tf1_checkpoint(
    variables: dict[str, np.ndarray], directory: Path, step: int = 1000, slots: bool = True
) -> Path:
    """`variables` saved by TF1's Saver as `model.ckpt-<step>`, with AdamWeightDecayOptimizer's
    `adam_m`/`adam_v` per variable and global_step when `slots`, next to a vocab.txt."""
    import tensorflow as tf

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(step)
    everything = dict(variables)
    if slots:
        for name, value in variables.items():
            for slot in ("adam_m", "adam_v"):
                everything[f"{name}/{slot}"] = rng.normal(0, 1e-3, value.shape).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        made = {
            name: tf.compat.v1.get_variable(name, value.shape, tf.float32, tf.zeros_initializer())
            for name, value in everything.items()
        }
        if slots:
            tf.compat.v1.train.get_or_create_global_step()
        session.run(tf.compat.v1.global_variables_initializer())
        for name, variable in made.items():  # fed, not baked into the graph as constants
            variable.load(everything[name], session)
        tf.compat.v1.train.Saver().save(session, str(directory / "model.ckpt"), global_step=step)
    vocab_size = next(v.shape[0] for k, v in variables.items() if k.endswith("/word_embeddings"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += [f"tok{i}" for i in range(vocab_size - len(vocab))]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return directory


def share_embeddings(generator, discriminator) -> None:
    """Give the generator the discriminator's embedding tables, as the release does."""
    theirs = {w.name.split("/", 2)[2]: w for w in discriminator.weights if "/embeddings/" in w.name}
    for w in generator.weights:
        key = w.name.split("/", 2)[2]
        if "/embeddings/" in w.name and key in theirs:
            w.assign(theirs[key].numpy())


def build_release_pair(root: Path, seed: int, gen_hidden: int, **overrides):
    """A discriminator (TFElectraForPreTraining) and a generator (TFElectraForMaskedLM,
    `gen_hidden` wide, one head per 64 units as run_pretraining.py's get_generator_config sets),
    sharing their embedding tables; each saved with save_pretrained under `root`."""
    disc = build_tf_electra(None, "ElectraForPreTraining", seed, **overrides)
    gen = build_tf_electra(
        None,
        "ElectraForMaskedLM",
        seed + 1,
        **{
            **overrides,
            "hidden_size": gen_hidden,
            "intermediate_size": 4 * gen_hidden,
            "num_attention_heads": max(1, gen_hidden // 64),
        },
    )
    share_embeddings(gen, disc)
    disc.save_pretrained(str(root / "discriminator-hf"))
    gen.save_pretrained(str(root / "generator-hf"))
    return disc, gen
