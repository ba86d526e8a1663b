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

from . import real_models
from .producers import ELECTRA_TINY, build_tf_model, head_classes  # noqa: F401 - re-exported

ELECTRA_HEAD_CLASSES = head_classes("electra")
HEAD_LABELS = {"question-answering": 2, "token-classification": 5}  # start/end; any count


def build_tf_electra(directory: Path | None, class_name: str, seed: int = 0, **overrides):
    """A transformers TFElectra* model with random weights, saved with save_pretrained when a
    directory is given."""
    return build_tf_model("electra", class_name, directory, seed, **overrides)


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


# --- the session's sources ---


def build_electra_heads(root: Path, first_seed: int) -> None:
    """One tf_model.h5 per head, `root/<head>`, and `root/same-width`: a discriminator whose
    embeddings are as wide as its encoder (no projection, as ELECTRA-base/large)."""
    for i, (head, cls) in enumerate(ELECTRA_HEAD_CLASSES.items()):
        labels = HEAD_LABELS.get(head, 3)
        build_tf_electra(root / head, cls, seed=first_seed + i, num_labels=labels)
    build_tf_electra(root / "same-width", "ElectraForPreTraining", seed=79, embedding_size=32)


RELEASES = {  # name → (embedding_size, discriminator width); the generator is 64 wide, 1 head
    "small": (32, 128),  # both models project their embeddings, as ELECTRA-small
    "base": (128, 128),  # only the generator projects, as ELECTRA-base/large
}


def build_electra_releases(root: Path, first_seed: int) -> None:
    """Per release shape, `root/<name>/release`: its run_pretraining.py checkpoint, next to the
    TFElectra* models it came from (`discriminator-hf`, `generator-hf`)."""
    for i, (name, (embedding, width)) in enumerate(RELEASES.items()):
        dims = dict(embedding_size=embedding, hidden_size=width, intermediate_size=4 * width)
        disc, gen = build_release_pair(
            root / name, first_seed + 2 * i, 64, num_attention_heads=width // 64, **dims
        )
        write_tf1_checkpoint(release_variables(disc, gen), root / name / "release")


# --- real trained weights ---


def minilm_electra_pt(directory, positions: int = 32):
    """all-MiniLM-L6-v2's trained encoder in an ElectraForPreTraining shell (embedding_size =
    hidden_size = 384: no projection, as ELECTRA-base), positions cut to `positions`; the
    discriminator head, which MiniLM lacks, comes from transformers' initialiser, seeded."""
    import transformers

    config = transformers.ElectraConfig(
        **real_models.trained_settings(
            "vocab_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "type_vocab_size",
            "hidden_act",
            "layer_norm_eps",
            embedding_size="hidden_size",
            hidden_size="hidden_size",
        ),
        max_position_embeddings=positions,
    )
    trained = {
        name: value[:positions] if name == "embeddings.position_embeddings.weight" else value
        for name, value in real_models.minilm_tensors().items()
        if name.startswith(("embeddings.", "encoder.")) and "position_ids" not in name
    }
    return real_models.save_shell(directory, "ElectraForPreTraining", config, trained, "electra.")


def build_minilm_electra(root: Path) -> None:
    """The trained encoder as ElectraForPreTraining in `root/pt`, its TF class's h5 in
    `root/h5`, and in `root/tf1` a run_pretraining.py checkpoint of it with a generator (128
    wide over the same embeddings, from TFElectraForMaskedLM's initialiser), no slots."""
    pt_dir = minilm_electra_pt(root / "pt")
    disc = real_models.tf_model(pt_dir, "ElectraForPreTraining")
    disc.save_pretrained(str(root / "h5"))
    gen = build_tf_electra(
        None,
        "ElectraForMaskedLM",
        seed=7,
        vocab_size=disc.config.vocab_size,
        embedding_size=disc.config.embedding_size,
        max_position_embeddings=disc.config.max_position_embeddings,
        hidden_size=128,
        intermediate_size=512,
    )
    share_embeddings(gen, disc)
    write_tf1_checkpoint(release_variables(disc, gen), root / "tf1", slots=False)
