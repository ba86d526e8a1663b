"""The TF reference for TF1 checkpoints (google-research bert, albert, electra): a post-LayerNorm
BERT-style encoder written in TensorFlow ops, reading the checkpoint's own variables through the
role names its table declares (schema: tf1_encoder_spec.py). There is no other TF model that
reads these names, and it shares nothing with the conversion rules: it is what the converted
model is checked against. Tests validate it against transformers' TF classes on the same weights.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ParityError
from ..plan.accounting import Plan
from ..readers import Source
from ..tables.reference import head_facts
from ..tables.tf1_encoder_spec import CONFIG_ACTIVATION, INDEX_STEPS, ROLES, flatten
from ..tf_import import tensorflow
from .inputs import Batch


def _activations(tf) -> dict[str, Any]:
    """The ops an ACTIVATIONS name stands for (modeling.py's get_activation and friends)."""

    def gelu_tanh(x):
        return 0.5 * x * (1.0 + tf.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * tf.pow(x, 3))))

    def gelu_exact(x):
        return 0.5 * x * (1.0 + tf.math.erf(x / math.sqrt(2.0)))

    return {
        "gelu_tanh": gelu_tanh,
        "gelu_exact": gelu_exact,
        "relu": tf.nn.relu,
        "tanh": tf.tanh,
        "linear": lambda x: x,
    }


def _encoder_name(plan: Plan) -> str:
    spec = plan.table.reference
    return head_facts(spec, plan.head).extra.get("encoder") or next(iter(spec["encoders"]))


class Tf1EncoderRunner:
    framework = "tensorflow"

    @staticmethod
    def reference(source: Source, plan: Plan) -> str:
        return (
            f"the TF1 reference encoder '{_encoder_name(plan)}' (post-LayerNorm, on the "
            f"checkpoint's own names, mappings/{plan.table.name}.yaml)"
        )

    def __init__(self, source: Source, plan: Plan):
        tf = self.tf = tensorflow()
        spec = plan.table.reference
        self.encoder = spec["encoders"][_encoder_name(plan)]
        self.embeddings = self.encoder.get("embeddings") or spec["embeddings"]
        self.outputs = {
            name: flatten(chain) for name, chain in head_facts(spec, plan.head).outputs.items()
        }
        self.eps = float(spec["layer_norm_eps"])
        self.mask_adder = float(spec["mask_adder"])
        config = {**plan.dims, **source.config}  # the source's own values (modeling.py's "gelu")
        self.layers = int(config[self.encoder.get("layers_from", "num_hidden_layers")])
        self.heads = int(config[self.encoder.get("heads_from", "num_attention_heads")])
        self.groups = int(config.get(self.encoder.get("groups_from", "num_hidden_groups"), 1))
        ops = _activations(tf)
        act = str(config.get(self.encoder.get("activation_from", CONFIG_ACTIVATION), ""))
        if act not in spec["activations"]:
            raise ParityError(
                f"the config's activation '{act}' is not one the reference knows "
                f"({', '.join(spec['activations'])}, per mappings/{plan.table.name}.yaml)",
                source.config_path or source.path,
            )
        self.ops = {**ops, CONFIG_ACTIVATION: ops[spec["activations"][act]]}
        # modeling.py projects only embeddings narrower than the encoder: a checkpoint whose
        # widths agree (ELECTRA-base) holds no projection, and none is applied
        project = self.encoder.get("project", "")
        stored = {t.name for t in source.tensors}
        self.project = project if f"{project}/kernel" in stored else ""
        self.v = self._variables(source, plan.table.name)

    def _layer_scopes(self) -> list[str]:
        layer = self.encoder["layer"]
        return [
            layer.replace("{L}", str(i)).replace("{G}", str(i * self.groups // self.layers))
            for i in range(self.layers)
        ]

    def _needed(self) -> set[str]:
        """Every variable this reference reads, by name."""
        dense = {"kernel", "bias"}
        norm = {"gamma", "beta"}

        def scope(name: str, role: str) -> set[str]:
            return {f"{name}/{v}" for v in (norm if role.endswith("layer_norm") else dense)}

        names = {v for k, v in self.embeddings.items() if k != "layer_norm"}
        names |= scope(self.embeddings["layer_norm"], "layer_norm")
        if self.project:
            names |= scope(self.project, "dense")
        for layer in set(self._layer_scopes()):
            for role in ROLES:
                names |= scope(f"{layer}/{self.encoder['roles'][role]}", role)
        for chain in self.outputs.values():
            for step in chain:
                if isinstance(step, dict):
                    ((op, arg),) = step.items()
                    if op in ("dense", "layer_norm"):
                        names |= scope(arg, op)
                    elif op != "activation" and op not in INDEX_STEPS:
                        names.add(arg)
        return names

    def _variables(self, source: Source, table: str) -> dict[str, Any]:
        tensors = {t.name: t for t in source.tensors}
        needed = self._needed()
        absent = sorted(needed - set(tensors))
        if absent:
            raise ParityError(
                f"the checkpoint has no variable {absent[0]}"
                + (f" (and {len(absent) - 1} more)" if len(absent) > 1 else "")
                + f", which the reference declared in mappings/{table}.yaml reads",
                source.path,
            )
        return {name: self._float32(tensors[name].read(None)) for name in sorted(needed)}

    def _float32(self, value: np.ndarray):
        """The reference computes in float32, whatever dtype the checkpoint stores (float16 and
        bfloat16 widen exactly)."""
        constant = self.tf.constant(value)
        return self.tf.cast(constant, self.tf.float32) if constant.dtype.is_floating else constant

    def _dense(self, x, scope: str):
        kernel = self.v[f"{scope}/kernel"]
        if len(kernel.shape) != 2:  # a 3-D kernel is the 2-D matrix it reshapes to
            kernel = self.tf.reshape(kernel, [x.shape[-1], -1])
        return self.tf.matmul(x, kernel) + self.tf.reshape(self.v[f"{scope}/bias"], [-1])

    def _layer_norm(self, x, scope: str):
        tf = self.tf
        mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
        normed = (x - mean) * tf.math.rsqrt(variance + self.eps)
        return normed * self.v[f"{scope}/gamma"] + self.v[f"{scope}/beta"]

    def _attention(self, x, mask_adder, scope: str):
        tf, roles = self.tf, self.encoder["roles"]
        batch, length, width = x.shape
        size = width // self.heads

        def split(t):
            return tf.transpose(tf.reshape(t, [batch, length, self.heads, size]), [0, 2, 1, 3])

        q, k, v = (split(self._dense(x, f"{scope}/{roles[r]}")) for r in ("query", "key", "value"))
        scores = tf.matmul(q, k, transpose_b=True) / math.sqrt(size) + mask_adder
        context = tf.matmul(tf.nn.softmax(scores, axis=-1), v)
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch, length, width])
        out = self._dense(context, f"{scope}/{roles['attention_output']}") + x
        return self._layer_norm(out, f"{scope}/{roles['attention_layer_norm']}")

    def _layer(self, x, mask_adder, scope: str):
        roles = self.encoder["roles"]
        attended = self._attention(x, mask_adder, scope)
        inner = self.ops[CONFIG_ACTIVATION](
            self._dense(attended, f"{scope}/{roles['intermediate']}")
        )
        out = self._dense(inner, f"{scope}/{roles['output']}") + attended
        return self._layer_norm(out, f"{scope}/{roles['output_layer_norm']}")

    def _encode(self, ids, mask, types) -> list:
        tf, v, e = self.tf, self.v, self.embeddings
        x = tf.gather(v[e["word"]], ids)
        if "token_type" in e:
            x += tf.gather(v[e["token_type"]], types)
        x += v[e["position"]][: ids.shape[1]][None]
        x = self._layer_norm(x, e["layer_norm"])
        if self.project:
            x = self._dense(x, self.project)
        hidden = [x]
        mask_adder = (1.0 - tf.cast(mask, tf.float32))[:, None, None, :] * self.mask_adder
        for scope in self._layer_scopes():
            hidden.append(self._layer(hidden[-1], mask_adder, scope))
        return hidden

    def _chain(self, x, steps: list):
        """An output's declared op chain (tf1_encoder_spec.py) applied to `x`."""
        tf, v = self.tf, self.v
        ops = {
            "first_token": lambda x, _: x[:, 0],
            "squeeze_last": lambda x, _: tf.squeeze(x, -1),
            "dense": self._dense,
            "layer_norm": self._layer_norm,
            "activation": lambda x, name: self.ops[name](x),
            "matmul": lambda x, name: tf.matmul(x, v[name]),
            "matmul_transposed": lambda x, name: tf.matmul(x, v[name], transpose_b=True),
            "add_bias": lambda x, name: x + v[name],
            "column": lambda x, index: x[..., index],
        }
        for step in steps:
            ((op, arg),) = step.items() if isinstance(step, dict) else ((step, None),)
            x = ops[op](x, arg)
        return x

    def run(self, batch: Batch) -> dict[str, np.ndarray]:
        tf = self.tf
        ids = batch.input_ids.astype(np.int32)
        types = batch.token_type_ids if batch.token_type_ids is not None else ids * 0
        hidden = self._encode(
            tf.constant(ids), batch.attention_mask, tf.constant(types.astype(np.int32))
        )
        outputs = {f"hidden_states[{i}]": h for i, h in enumerate(hidden)}
        for name, steps in self.outputs.items():
            outputs[name] = self._chain(hidden[-1], steps)
        return {k: np.asarray(t, dtype=np.float32) for k, t in outputs.items()}
