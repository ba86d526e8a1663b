"""The TF reference for keras-hub / Keras 3 sources: keras-hub's own model, rebuilt from its own
config (or, for a bare `.weights.h5`, from the config the conversion inferred) with the source
weights loaded by Keras. What it is fed, where its hidden states are and which of its outputs
holds each PyTorch output are the table's `reference:` facts (converter/tables/reference.py,
converter/tables/keras_hub_spec.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..errors import ParityError
from ..plan.accounting import Plan
from ..readers import Source
from ..tables.keras_hub_spec import head_as_target
from ..tables.reference import feeds, head_facts
from .inputs import Batch
from .runners import Outputs, quiet_tensorflow

# transformers' activation names (a config's hidden_act) as the Keras function that computes the
# same thing, for a keras-hub head set to compute what the PyTorch class computes.
KERAS_ACTIVATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "gelu": ("gelu", {"approximate": False}),
    "gelu_new": ("gelu", {"approximate": True}),
    "gelu_pytorch_tanh": ("gelu", {"approximate": True}),
    "relu": ("relu", {}),
    "tanh": ("tanh", {}),
}


class KerasHubRunner:
    """keras-hub itself: the model rebuilt from its own config (or, for a bare `.weights.h5`,
    from the config the conversion inferred) with the source weights loaded by Keras.

    keras-hub models return only their final output, so the runner reads the embeddings and each
    encoder layer from the backbone's functional graph (the attributes the table names under
    `hidden_states:`; a layer called several times, as ALBERT's shared layers are, gives one
    hidden state per call). Two head outputs differ in form from PyTorch's and are brought to it
    without changing what is computed: `task_output` leaves a classifier's output activation
    (softmax, …) off, since the PyTorch model returns logits; `masked_lm_every_position` asks the
    masked-LM head for every position, so its logits cover the whole sequence.

    Where the table declares that the PyTorch class computes a head differently from keras-hub
    (`head_as_target:`, keras_hub_spec.py), the head is run as the PyTorch class computes it, so
    parity proves every weight, and its own output is measured against that: the difference is
    reported as a declared deviation (`declared_deviations`), never hidden.
    """

    framework = "keras"

    @staticmethod
    def reference(source: Source, plan: Plan) -> str:
        return f"keras-hub's {plan.table.heads[plan.head].source_class}"

    def __init__(self, source: Source, plan: Plan):
        quiet_tensorflow()
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import keras
        import keras_hub

        keras.utils.set_random_seed(0)
        self.keras = keras
        reference = plan.table.reference
        self.feeds = feeds(reference)
        facts = head_facts(reference, plan.head)
        self.outputs = facts.outputs
        self.as_target = head_as_target(facts.extra, plan.dims)
        self._measured: list[tuple[float, int, int]] = []  # per batch: max diff, argmax, positions
        self._head_facts: dict[str, Any] = {}
        model = self._load(source, plan, keras, keras_hub)
        self.backbone = model if plan.table.heads[plan.head].bare else model.backbone
        self.task = None if model is self.backbone else model
        if getattr(self.task, "output_dense", None) is not None:
            self.task.output_dense.activation = keras.activations.linear
        hidden = call_outputs(self.backbone, reference["hidden_states"])
        self.features = keras.Model(
            self.backbone.input, {"hidden": hidden, "backbone": self.backbone.output}
        )

    @staticmethod
    def _load(source: Source, plan: Plan, keras, keras_hub):
        if source.form == ".keras":
            return _in_float32(keras.saving.load_model(str(source.path), compile=False))
        if source.form == "preset":
            bare = plan.table.heads[plan.head].bare
            cls = getattr(keras_hub.models, "Backbone" if bare else source.config["task_class"])
            return cls.from_preset(str(source.path), **({} if bare else {"preprocessor": None}))
        return _build_from_dims(source, plan, keras_hub)

    def run(self, batch: Batch) -> Outputs:
        feed = batch.feed(self.feeds)
        result = self.features(feed, training=False)
        hidden = [np.asarray(h, dtype=np.float32) for h in result["hidden"]]
        outputs = {f"hidden_states[{i}]": h for i, h in enumerate(hidden)}
        for name, source in self.outputs.items():
            value = OUTPUT_SOURCES[source](self, feed, hidden, result["backbone"])
            outputs[name] = np.asarray(value, np.float32)
        return outputs

    def masked_lm_logits(self, last_hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The masked-LM head on every position; run as the PyTorch class computes it when the
        table says the two differ, its own output then measured against that."""
        head = self.task.masked_lm_head
        rows, width = last_hidden.shape[:2]
        every_position = np.tile(np.arange(width, dtype=np.int32), (rows, 1))

        def logits() -> np.ndarray:
            return np.asarray(head(last_hidden, every_position, training=False), np.float32)

        own = logits()
        if not self.as_target:
            return own
        with _computing_as(head, self.as_target, self.keras) as own_facts:
            as_target = logits()
        real = mask.astype(bool)
        self._measured.append(
            (
                float(np.abs(own.astype(np.float64) - as_target)[real].max()),
                int((own.argmax(-1) == as_target.argmax(-1))[real].sum()),
                int(real.sum()),
            )
        )
        self._head_facts = own_facts
        return as_target

    def declared_deviations(self) -> list[dict[str, Any]]:
        """Where the PyTorch class computes differently from keras-hub by the table's
        declaration, and by how much keras-hub's own output differs, over every batch run."""
        if not self._measured:
            return []
        agreeing = sum(m[1] for m in self._measured)
        positions = sum(m[2] for m in self._measured)
        return [
            {
                "output": "logits",
                "what": "masked-LM head",
                "source": self._head_facts,
                "target": dict(self.as_target),
                "max_abs_diff": max(m[0] for m in self._measured),
                "argmax_agreement": agreeing / positions,
                "positions": positions,
            }
        ]


@contextmanager
def _computing_as(head, target: dict[str, Any], keras) -> Iterator[dict[str, Any]]:
    """keras-hub's MaskedLMHead set, for the duration, to the activation and LayerNorm epsilon
    the PyTorch class uses; yields the head's own values of what it changes."""
    norm, dense = head._intermediate_layer_norm, head._intermediate_dense
    kept = (norm.epsilon, dense.activation)
    own = {
        "layer_norm_epsilon": norm.epsilon,
        "activation": getattr(dense.activation, "__name__", str(dense.activation)),
    }
    norm.epsilon = target.get("layer_norm_epsilon", norm.epsilon)
    if "activation" in target:
        name, kwargs = KERAS_ACTIVATIONS[target["activation"]]
        function = getattr(keras.activations, name)
        dense.activation = lambda x: function(x, **kwargs)
    try:
        yield {k: v for k, v in own.items() if k in target}
    finally:
        norm.epsilon, dense.activation = kept


def call_outputs(backbone, attributes: list) -> list:
    """The outputs of the layers held by the backbone's `attributes`, one per call, in the order
    the functional graph calls them (a shared layer called twice gives two). An entry that is a
    list names alternatives: the first attribute the backbone has (ElectraBackbone builds
    `embeddings_projection` only when the two widths differ)."""
    wanted: list = []
    for entry in attributes:
        names = entry if isinstance(entry, list) else [entry]
        present = [n for n in names if hasattr(backbone, n)]
        if not present:
            raise ParityError(
                f"keras-hub's {type(backbone).__name__} has no {' or '.join(names)} "
                "(the table's reference.hidden_states)"
            )
        wanted += _flatten(getattr(backbone, present[0]))
    ids = {id(layer) for layer in wanted}
    by_depth = backbone._nodes_by_depth  # Keras 3 Functional: depth 0 is the output side
    return [
        node.outputs[0]
        for depth in sorted(by_depth, reverse=True)
        for node in by_depth[depth]
        if id(node.operation) in ids
    ]


def _flatten(found: Any) -> list:
    if isinstance(found, list | tuple):
        return [layer for item in found for layer in _flatten(item)]
    return [found]


def _task_output(runner: KerasHubRunner, feed: dict[str, Any], hidden: list, backbone: Any) -> Any:
    return runner.task(feed, training=False)


def _masked_lm_every_position(
    runner: KerasHubRunner, feed: dict[str, Any], hidden: list, backbone: Any
) -> Any:
    return runner.masked_lm_logits(hidden[-1], feed_mask(runner, feed))


def _pooled_output(runner: KerasHubRunner, feed: dict[str, Any], hidden: list, backbone: Any):
    return backbone["pooled_output"]


def feed_mask(runner: KerasHubRunner, feed: dict[str, Any]) -> np.ndarray:
    """The attention mask among the fed inputs (the table's feeds name it)."""
    name = next(k for k, v in runner.feeds.items() if v == "attention_mask")
    return np.asarray(feed[name])


# `outputs:` values of a keras-hub table (RUNNERS["keras-hub"] in tables/reference.py)
OUTPUT_SOURCES: dict[str, Callable[[KerasHubRunner, dict[str, Any], list, Any], Any]] = {
    "task_output": _task_output,
    "masked_lm_every_position": _masked_lm_every_position,
    "pooled_output": _pooled_output,
}


def _float32_config(config: Any) -> Any:
    """A Keras config with every dtype policy replaced by float32."""
    if isinstance(config, dict):
        return {k: "float32" if k == "dtype" else _float32_config(v) for k, v in config.items()}
    if isinstance(config, list):
        return [_float32_config(v) for v in config]
    return config


def _in_float32(model):
    """The reference computes in float32 whatever dtype the source was saved in: a `.keras`
    file keeps its bfloat16/float16 policy, so such a model is rebuilt from its config in
    float32 and given its stored weights, widened exactly (presets and bare weights files are
    built in float32 already)."""
    if all(w.dtype == "float32" for w in model.weights):
        return model
    rebuilt = type(model).from_config(_float32_config(model.get_config()))
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def _build_from_dims(source: Source, plan: Plan, keras_hub):
    """A bare `.weights.h5` has no config: build the keras-hub classes the table names with the
    dimensions the conversion inferred from the weights, then let Keras load the file."""
    table = plan.table
    kwargs: dict[str, dict[str, Any]] = {"backbone": {}, "task": {}}
    for hf_key, entry in table.source_config.items():
        if entry.key and hf_key in plan.dims:
            scope, name = entry.key.split(".", 1)
            kwargs[scope][name] = plan.dims[hf_key] - entry.add
    backbone_class = next(h.source_class for h in table.heads.values() if h.bare)
    backbone = getattr(keras_hub.models, backbone_class)(**kwargs["backbone"])
    head = table.heads[plan.head]
    if head.bare:
        model = backbone
    else:
        task_kwargs = {k: v for k, v in kwargs["task"].items() if k == "num_classes"}
        cls = getattr(keras_hub.models, head.source_class)
        model = cls(backbone=backbone, preprocessor=None, **task_kwargs)
    model.load_weights(str(source.weight_files[0]))
    return model
