"""Real-scale sources made from trained weights (tests/real_models.py) by the real producers,
built on first use and kept for the test session (the `corpus` fixture in conftest.py), each
converted once. Shared by the gate's tests (test_real_scale.py) and the diagnosis's
(test_diagnosis.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import real_models
from .conftest import (
    BERT_HEAD_CLASSES,
    HEAD_CLASSES,
    KERAS_HUB_CLASSES,
    TF1_KINDS,
    run_cli,
    save_tf1_checkpoint,
)
from .fixture_cache import build_once
from .producers import model_garden_settings
from .real_weights import minilm_dir

CLASSES = {"bert": BERT_HEAD_CLASSES, "roberta": HEAD_CLASSES}
HEADS_POSITIONS = 128  # keeps the every-head corpus affordable: 4× fewer tokens per forward
HEAD_CONFIG = {  # what a user of each head sets in its config
    "sequence-classification": {"num_labels": 3},
    "token-classification": {"num_labels": 5},
    "causal-lm": {"is_decoder": True},
}


def model_garden_encoder(directory: Path) -> Path:
    """The trained encoder as TF Model Garden's BertEncoderV2 (its own EinsumDense layouts:
    q/k/v kernels [hidden, heads, head_dim], the attention output [heads, head_dim, hidden]),
    saved with tf.train.Checkpoint(encoder=…) and no config file, as Model Garden does. Model
    Garden's "gelu" is the tanh form, so this model computes gelu_new where MiniLM was trained
    with gelu: the checkpoint, not the training, is the truth parity checks."""
    import tensorflow as tf
    from official.nlp.modeling import networks

    trained = real_models.minilm_tensors()
    config = real_models.bert_config()
    heads = config.num_attention_heads
    head_dim = config.hidden_size // heads
    encoder = networks.BertEncoderV2(
        inner_dim=config.intermediate_size, **model_garden_settings(config.to_dict())
    )
    ids = tf.ones((1, 4), tf.int32)
    encoder(dict(input_word_ids=ids, input_mask=ids, input_type_ids=ids * 0))

    def value(path: str) -> np.ndarray:
        """The trained tensor for a Model Garden variable path, in Model Garden's layout."""
        parts = path.split("/")
        if parts[0] in ("word_embeddings", "position_embedding", "type_embeddings"):
            name = {"position_embedding": "position", "type_embeddings": "token_type"}.get(
                parts[0], "word"
            )
            return trained[f"embeddings.{name}_embeddings.weight"]
        norm = {"gamma": "weight", "beta": "bias"}
        if parts[0] == "embeddings":
            return trained[f"embeddings.LayerNorm.{norm[parts[-1]]}"]
        if parts[0] == "pooler_transform":
            w = trained[f"pooler.dense.{'weight' if parts[1] == 'kernel' else 'bias'}"]
            return w.T if parts[1] == "kernel" else w
        layer = f"encoder.layer.{parts[1].removeprefix('layer_')}."
        kind, leaf = parts[-2], parts[-1]
        if kind in ("self_attention_layer_norm", "output_layer_norm"):
            where = "attention.output" if kind.startswith("self") else "output"
            return trained[f"{layer}{where}.LayerNorm.{norm[leaf]}"]
        torch_name = {
            "query": "attention.self.query",
            "key": "attention.self.key",
            "value": "attention.self.value",
            "attention_output": "attention.output.dense",
            "intermediate": "intermediate.dense",
            "output": "output.dense",
        }[kind]
        w = trained[f"{layer}{torch_name}.{'weight' if leaf == 'kernel' else 'bias'}"]
        if kind in ("query", "key", "value"):
            return w.T.reshape(-1, heads, head_dim) if leaf == "kernel" else w.reshape(heads, -1)
        if kind == "attention_output" and leaf == "kernel":
            return w.T.reshape(heads, head_dim, -1)
        return w.T if leaf == "kernel" else w

    for variable in encoder.weights:
        path = variable.name.removesuffix(":0").split("/", 1)[1]
        variable.assign(value(path))
    directory.mkdir(parents=True)
    tf.train.Checkpoint(encoder=encoder).save(str(directory / "ckpt"))
    return directory


class RealCorpus:
    """Sources built on first use, each converted once, in `root`: a directory the run's xdist
    workers share (tests/fixture_cache.py), so the worker that asks first builds and the other
    waits and reuses. Not kept across runs: the roberta-base-sized entries are ~0.5 GB each."""

    def __init__(self, root: Path):
        self.root = root
        self.cache: dict[tuple, Path] = {}

    def _once(self, key: tuple, build) -> Path:
        if key not in self.cache:
            self.cache[key] = build_once(self.root, "-".join(map(str, key)), build)
        return self.cache[key]

    def pytorch(self, family: str, width: int = 1, positions: int | None = None) -> Path:
        if family == "bert" and width == 1 and positions is None:
            return minilm_dir()
        return self._once(
            ("pt", family, width, positions),
            lambda d: real_models.save_pretrained_pt(d, family, width, positions),
        )

    def hf_h5(self, family: str, head: str, width: int = 1) -> Path:
        """Every head of both families, with the trained positions cut to HEADS_POSITIONS (the
        full 512 are run by the keras-hub, TF1 and roberta-base-sized sources)."""
        config = HEAD_CONFIG.get(head, {})
        cls = CLASSES[family][head]
        positions = HEADS_POSITIONS if width == 1 else None
        return self._once(
            ("h5", family, head, width),
            lambda d: real_models.save_tf_h5(
                self.pytorch(family, width, positions), cls, d, **config
            ),
        )

    def keras_hub(self, head: str, width: int = 1) -> Path:
        """keras-hub's own Hugging Face importer, saved as a preset."""

        def build(directory: Path) -> Path:
            import keras_hub

            cls = getattr(keras_hub.models, KERAS_HUB_CLASSES[head])
            kwargs = {} if head == "base-model" else {"preprocessor": None}
            if head == "sequence-classification":
                kwargs["num_classes"] = 3
            model = cls.from_preset(str(self.pytorch("roberta", width)), **kwargs)
            model.save_to_preset(str(directory))
            return directory

        return self._once(("keras-hub", head, width), build)

    def tf1(self, kind: str, width: int = 1) -> Path:
        """google-research/bert checkpoints written by TF's Saver from TFBert* weights."""

        def build(directory: Path) -> Path:
            model = real_models.tf_model(self.pytorch("bert", width), TF1_KINDS[kind], num_labels=3)
            return save_tf1_checkpoint(model, directory, with_optimizer=False)

        return self._once(("tf1", kind, width), build)

    def model_garden(self) -> Path:
        """The trained encoder as a Model Garden BertEncoderV2 checkpoint."""
        return self._once(("model-garden",), model_garden_encoder)

    def converted(self, source: Path) -> Path:
        def convert(out: Path) -> Path:
            code, _, err = run_cli(["convert", str(source), str(out)])
            assert code == 0, err
            return out

        return self._once(("out", source.name), convert)
