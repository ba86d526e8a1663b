"""The TF reference for keras-hub / Keras 3 sources: keras-hub's own model, rebuilt from its own
config (or, for a bare `.weights.h5`, from the config the conversion inferred) with the source
weights loaded by Keras. What it is fed, where its hidden states are and which of its outputs
holds each PyTorch output are the table's `reference:` facts (reference_spec.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ..plan import Plan
from ..readers import Source
from .inputs import Batch
from .reference_spec import feeds, head_facts
from .runners import Outputs, quiet_tensorflow


class KerasHubRunner:
    """keras-hub itself: the model rebuilt from its own config (or, for a bare `.weights.h5`,
    from the config the conversion inferred) with the source weights loaded by Keras.

    keras-hub models return only their final output, so the runner reads the embeddings and each
    encoder layer from the backbone's functional graph (the attributes the table names under
    `hidden_states:`). Two head outputs differ in form from PyTorch's and are brought to it
    without changing what is computed: `task_output` leaves a classifier's output activation
    (softmax, …) off, since the PyTorch model returns logits; `masked_lm_every_position` asks the
    masked-LM head for every position, so its logits cover the whole sequence.
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
        self.outputs = head_facts(reference, plan.head).outputs
        model = self._load(source, plan, keras, keras_hub)
        self.backbone = model if plan.table.heads[plan.head].bare else model.backbone
        self.task = None if model is self.backbone else model
        if getattr(self.task, "output_dense", None) is not None:
            self.task.output_dense.activation = keras.activations.linear
        layers = []
        for attribute in reference["hidden_states"]:
            found = getattr(self.backbone, attribute)
            layers += found if isinstance(found, list) else [found]
        self.features = keras.Model(self.backbone.input, [layer.output for layer in layers])

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
        hidden = [np.asarray(h, dtype=np.float32) for h in self.features(feed, training=False)]
        outputs = {f"hidden_states[{i}]": h for i, h in enumerate(hidden)}
        for name, source in self.outputs.items():
            outputs[name] = np.asarray(OUTPUT_SOURCES[source](self, feed, hidden), np.float32)
        return outputs


def _task_output(runner: KerasHubRunner, feed: dict[str, Any], hidden: list) -> Any:
    return runner.task(feed, training=False)


def _masked_lm_every_position(runner: KerasHubRunner, feed: dict[str, Any], hidden: list) -> Any:
    rows, width = hidden[-1].shape[:2]
    every_position = np.tile(np.arange(width, dtype=np.int32), (rows, 1))
    return runner.task.masked_lm_head(hidden[-1], every_position, training=False)


# `outputs:` values of a keras-hub table (reference_spec.RUNNERS["keras-hub"].output_sources)
OUTPUT_SOURCES: dict[str, Callable[[KerasHubRunner, dict[str, Any], list], Any]] = {
    "task_output": _task_output,
    "masked_lm_every_position": _masked_lm_every_position,
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
