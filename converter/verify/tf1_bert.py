"""The TF reference for google-research/bert TF1 checkpoints: BERT's forward pass written in
TensorFlow against the checkpoint's own variable names, following modeling.py, run_pretraining.py
and run_classifier.py. There is no other TF model that reads these names, and it must not share
anything with the conversion tables: it is what the converted model is checked against. Tests
validate it against transformers' TFBert* classes on the same weights.

What modeling.py fixes and its config does not say: LayerNorm epsilon 1e-12; "gelu" is the tanh
approximation; padding is masked by adding -10000 to the attention scores.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..plan import Plan
from ..readers import Source
from ..tf_import import tensorflow
from .inputs import Batch

LAYER_NORM_EPSILON = 1e-12
MASK_ADDER = -10000.0


def _activation(name: str, tf):
    """modeling.py get_activation."""

    def gelu_tanh(x):
        return 0.5 * x * (1.0 + tf.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * tf.pow(x, 3))))

    table = {"gelu": gelu_tanh, "relu": tf.nn.relu, "tanh": tf.tanh, "linear": lambda x: x}
    if name.lower() not in table:
        raise ValueError(f"modeling.py has no activation '{name}'")
    return table[name.lower()]


class Tf1BertRunner:
    framework = "tensorflow"

    @staticmethod
    def reference(source: Source, plan: Plan) -> str:
        return "the TF1 reference BERT (modeling.py's forward on the checkpoint's own names)"

    def __init__(self, source: Source, plan: Plan):
        tf = tensorflow()
        self.tf = tf
        ignored = {i.src for i in plan.ignored}
        self.v = {
            t.name: tf.constant(t.read(None)) for t in source.tensors if t.name not in ignored
        }
        config: dict[str, Any] = source.config
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.act = _activation(str(config.get("hidden_act", "gelu")), tf)
        self.head = plan.head

    def _dense(self, x, scope: str):
        return self.tf.matmul(x, self.v[f"{scope}/kernel"]) + self.v[f"{scope}/bias"]

    def _layer_norm(self, x, scope: str):
        tf = self.tf
        mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
        normed = (x - mean) * tf.math.rsqrt(variance + LAYER_NORM_EPSILON)
        return normed * self.v[f"{scope}/gamma"] + self.v[f"{scope}/beta"]

    def _attention(self, x, mask_adder, scope: str):
        tf = self.tf
        batch, length, width = x.shape
        size = width // self.heads

        def split(t):
            return tf.transpose(tf.reshape(t, [batch, length, self.heads, size]), [0, 2, 1, 3])

        q = split(self._dense(x, f"{scope}/self/query"))
        k = split(self._dense(x, f"{scope}/self/key"))
        v = split(self._dense(x, f"{scope}/self/value"))
        scores = tf.matmul(q, k, transpose_b=True) / math.sqrt(size) + mask_adder
        context = tf.matmul(tf.nn.softmax(scores, axis=-1), v)
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch, length, width])
        return self._layer_norm(
            self._dense(context, f"{scope}/output/dense") + x, f"{scope}/output/LayerNorm"
        )

    def _encode(self, ids, mask, types) -> list:
        tf, v = self.tf, self.v
        length = ids.shape[1]
        x = tf.gather(v["bert/embeddings/word_embeddings"], ids)
        x += tf.gather(v["bert/embeddings/token_type_embeddings"], types)
        x += v["bert/embeddings/position_embeddings"][:length][None]
        hidden = [self._layer_norm(x, "bert/embeddings/LayerNorm")]
        mask_adder = (1.0 - tf.cast(mask, tf.float32))[:, None, None, :] * MASK_ADDER
        for i in range(self.layers):
            scope = f"bert/encoder/layer_{i}"
            attended = self._attention(hidden[-1], mask_adder, f"{scope}/attention")
            inner = self.act(self._dense(attended, f"{scope}/intermediate/dense"))
            out = self._dense(inner, f"{scope}/output/dense") + attended
            hidden.append(self._layer_norm(out, f"{scope}/output/LayerNorm"))
        return hidden

    def run(self, batch: Batch) -> dict[str, np.ndarray]:
        tf, v = self.tf, self.v
        ids = tf.constant(batch.input_ids.astype(np.int32))
        types = batch.token_type_ids if batch.token_type_ids is not None else batch.input_ids * 0
        hidden = self._encode(ids, batch.attention_mask, tf.constant(types.astype(np.int32)))
        outputs = {f"hidden_states[{i}]": h for i, h in enumerate(hidden)}
        pooled = tf.tanh(self._dense(hidden[-1][:, 0], "bert/pooler/dense"))
        if self.head == "base-model":
            outputs["pooler_output"] = pooled
        elif self.head == "pretraining":
            x = self.act(self._dense(hidden[-1], "cls/predictions/transform/dense"))
            x = self._layer_norm(x, "cls/predictions/transform/LayerNorm")
            word = v["bert/embeddings/word_embeddings"]
            logits = tf.matmul(x, word, transpose_b=True) + v["cls/predictions/output_bias"]
            outputs["prediction_logits"] = logits
            nsp = tf.matmul(pooled, v["cls/seq_relationship/output_weights"], transpose_b=True)
            outputs["seq_relationship_logits"] = nsp + v["cls/seq_relationship/output_bias"]
        elif self.head == "sequence-classification":
            logits = tf.matmul(pooled, v["output_weights"], transpose_b=True) + v["output_bias"]
            outputs["logits"] = logits
        return {k: np.asarray(t, dtype=np.float32) for k, t in outputs.items()}
