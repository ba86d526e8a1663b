"""TF runners for parity: the source's faithful TF model (the PyTorch side is torch_side.py).

A runner returns the outputs to compare, in forward order and named as in the report:
`hidden_states[0..N]`, then `pooler_output` when the model has one, then the head outputs
(`logits`, or `start_logits`/`end_logits`). TF runners are registered per source layout, so a new
layout (keras-hub, TF1, SavedModel) plugs in by adding one class to TF_RUNNERS.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import ParityError
from ..plan import Plan
from ..readers import Source
from .inputs import Batch
from .tf1_bert import Tf1BertRunner
from .tf2_runners import Tf2Runner

Outputs = dict[str, np.ndarray]
SKIPPED_OUTPUTS = {
    "hidden_states",
    "attentions",
    "last_hidden_state",
    "past_key_values",
    "loss",
    "cross_attentions",
}


class Runner(Protocol):
    framework: str

    @staticmethod
    def reference(source: Source, plan: Plan) -> str:
        """What the reference model is, for progress lines and reports."""
        ...

    def run(self, batch: Batch) -> Outputs: ...


def ordered_outputs(model_output: Any, to_numpy: Callable[[Any], np.ndarray]) -> Outputs:
    """Hidden states first, then every other output in the order the model returns them."""
    outputs = {f"hidden_states[{i}]": to_numpy(h) for i, h in enumerate(model_output.hidden_states)}
    for key, value in model_output.items():
        if key not in SKIPPED_OUTPUTS and value is not None:
            outputs[key] = to_numpy(value)
    return outputs


def loading_problems(info: dict[str, Any], harmless: set[str] = frozenset()) -> list[str]:
    return [f"{k}: {sorted(set(v) - harmless)[:5]}" for k, v in info.items() if set(v) - harmless]


def _weightless_layers(unexpected: list[str], source: Source) -> set[str]:
    """Unexpected Keras layers that hold no weights in the source (dropout_29, …): the h5 keeps
    an empty group for them and the TF loader lists them. A layer that holds weights is never
    among these: every stored tensor's name starts with its layer."""
    holding = {t.name.split("/", 1)[0] for t in source.tensors}
    layer_names = {u for u in unexpected if "/" not in u}  # weight names are never excused
    return layer_names - holding


def _weightless_model_layers(missing: list[str], model) -> set[str]:
    """Missing Keras layers that hold no weights in the model either: an auto-named dropout
    (`dropout_7` here, saved as `dropout_19` by a process that had built more layers) has
    nothing to load."""
    layer_names = {m for m in missing if "/" not in m}  # weight names are never excused
    return {n for n in layer_names if not model.get_layer(n).weights}


def quiet_transformers() -> None:
    import transformers

    transformers.logging.set_verbosity_error()


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def _zero_initializers(cls: type, tf) -> Iterator[None]:
    """Build the TF model with zeros instead of truncated-normal draws.

    Every weight is then overwritten from the checkpoint (the loader must report nothing
    missing, or verification fails), so the draws were pure cost: 4 of the 6 s it takes to build
    roberta-base. Zeros would also make any weight left unloaded stand out.
    """
    module = sys.modules[cls.__module__]
    original = module.get_initializer
    module.get_initializer = lambda *args, **kwargs: tf.keras.initializers.Zeros()
    try:
        yield
    finally:
        module.get_initializer = original


def transformers_tf_class(plan: Plan, config_location: Path) -> tuple[Any, type, Any]:
    """TensorFlow (quiet, seeded), the plan's transformers `TF*` class, and its config read from
    `config_location` with `num_labels` as the weights hold it."""
    _quiet_tensorflow()
    import tensorflow as tf
    import transformers

    tf.keras.utils.set_random_seed(0)
    quiet_transformers()
    cls = getattr(transformers, "TF" + plan.class_name)
    config = cls.config_class.from_pretrained(str(config_location))
    config.num_labels = int(plan.dims["num_labels"])
    return tf, cls, config


class HfKerasTfRunner:
    """transformers' own TF class (4.x), built from the source config and weights."""

    framework = "tensorflow"

    @staticmethod
    def reference(source: Source, plan: Plan) -> str:
        return f"transformers' TF{plan.class_name}"

    def __init__(self, source: Source, plan: Plan):
        directory = source.weight_files[0].parent
        tf, cls, config = transformers_tf_class(plan, directory)
        with _zero_initializers(cls, tf):
            self.model, info = cls.from_pretrained(
                str(directory), config=config, output_loading_info=True
            )
        harmless = _weightless_layers(info.get("unexpected_keys", []), source)
        harmless |= _weightless_model_layers(info.get("missing_keys", []), self.model)
        problems = loading_problems(info, harmless)
        if problems:
            raise ParityError(
                "the source TF model did not load completely: " + "; ".join(problems), directory
            )

    def run(self, batch: Batch) -> Outputs:
        result = self.model(**batch.as_dict(), output_hidden_states=True, training=False)
        if result.hidden_states is None:
            # transformers 4.x TF*ForMultipleChoice passes output_hidden_states positionally into
            # the encoder_attention_mask slot of its main layer, so it never returns hidden
            # states. The main layer itself, on the flattened choices, is the same computation.
            width = batch.input_ids.shape[-1]
            flat = {k: v.reshape(-1, width) for k, v in batch.as_dict().items()}
            main_layer = getattr(self.model, self.model.base_model_prefix)
            inner = main_layer(**flat, output_hidden_states=True, training=False)
            result["hidden_states"] = inner.hidden_states
        return ordered_outputs(result, lambda t: np.asarray(t, dtype=np.float32))


class KerasHubRunner:
    """keras-hub itself: the model rebuilt from its own config (or, for a bare `.weights.h5`,
    from the config the conversion inferred) with the source weights loaded by Keras.

    keras-hub models return only their final output, so the runner reads the embeddings and each
    encoder layer from the backbone's functional graph. Two head outputs differ in form from
    PyTorch's and are brought to it without changing what is computed: a classifier's output
    activation (softmax, …) is left off, since the PyTorch model returns logits; the masked-LM
    head is asked for every position, so its logits cover the whole sequence.
    """

    framework = "keras"

    @staticmethod
    def reference(source: Source, plan: Plan) -> str:
        return f"keras-hub's {plan.table.heads[plan.head].source_class}"

    def __init__(self, source: Source, plan: Plan):
        _quiet_tensorflow()
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import keras
        import keras_hub

        keras.utils.set_random_seed(0)
        self.keras = keras
        self.head = plan.head
        model = self._load(source, plan, keras, keras_hub)
        self.backbone = model if plan.table.heads[plan.head].bare else model.backbone
        self.task = None if model is self.backbone else model
        if getattr(self.task, "output_dense", None) is not None:
            self.task.output_dense.activation = keras.activations.linear
        layers = [self.backbone.embeddings_layer_norm, *self.backbone.transformer_layers]
        self.features = keras.Model(self.backbone.input, [layer.output for layer in layers])

    @staticmethod
    def _load(source: Source, plan: Plan, keras, keras_hub):
        if source.form == ".keras":
            return keras.saving.load_model(str(source.path), compile=False)
        if source.form == "preset":
            bare = plan.table.heads[plan.head].bare
            cls = getattr(keras_hub.models, "Backbone" if bare else source.config["task_class"])
            return cls.from_preset(str(source.path), **({} if bare else {"preprocessor": None}))
        return _build_from_dims(source, plan, keras_hub)

    def run(self, batch: Batch) -> Outputs:
        feed = {"token_ids": batch.input_ids, "padding_mask": batch.attention_mask}
        hidden = [np.asarray(h, dtype=np.float32) for h in self.features(feed, training=False)]
        outputs = {f"hidden_states[{i}]": h for i, h in enumerate(hidden)}
        if self.head == "sequence-classification":
            outputs["logits"] = np.asarray(self.task(feed, training=False), dtype=np.float32)
        elif self.head == "masked-lm":
            rows, width = batch.input_ids.shape
            every_position = np.tile(np.arange(width, dtype=np.int32), (rows, 1))
            logits = self.task.masked_lm_head(hidden[-1], every_position, training=False)
            outputs["logits"] = np.asarray(logits, dtype=np.float32)
        return outputs


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


TF_RUNNERS: dict[str, Callable[[Source, Plan], Runner]] = {
    "hf-keras": HfKerasTfRunner,
    "keras-hub": KerasHubRunner,
    "tf1-checkpoint": Tf1BertRunner,
    "tf2": Tf2Runner,  # one layout, several producers: the table names its runner
}
