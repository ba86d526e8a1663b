"""TF runners for parity: the source's faithful TF model (the PyTorch side is torch_side.py).

A runner returns the outputs to compare, in forward order and named as in the report:
`hidden_states[0..N]`, then `pooler_output` when the model has one, then the head outputs
(`logits`, or `start_logits`/`end_logits`). Which runner a source needs is its table's
`reference: {runner: …}` (converter/tables/reference.py), imported only when parity asks for
it; this module holds the lookup and transformers' own TF class, `transformers-tf`.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import ParityError, UsageError
from ..plan.accounting import Plan
from ..readers import Source
from ..tables.reference import feeds, runner_name
from ..tf_import import tensorflow
from .inputs import Batch

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


# Which class implements each runner a table may name (converter/tables/reference.py lists the
# names and what their blocks may say); a module is imported only when parity asks for it.
RUNNER_CLASSES: dict[str, tuple[str, str]] = {
    "transformers-tf": (".runners", "HfKerasTfRunner"),
    "keras-save-weights": (".keras_save_weights", "KerasSaveWeightsRunner"),
    "keras-hub": (".keras_hub", "KerasHubRunner"),
    "tf1-encoder": (".tf1_encoder", "Tf1EncoderRunner"),
    "model-garden": (".model_garden", "ModelGardenRunner"),
    "saved-model": (".savedmodel", "SavedModelRunner"),
    "serving-signature": (".savedmodel", "ServingSignatureRunner"),
}


def declared_runner(plan: Plan) -> Callable[[Source, Plan], Runner]:
    """The runner class the plan's table names, imported now."""
    name = runner_name(plan.table.reference)
    if name not in RUNNER_CLASSES:  # a table without a reference block (named ones are checked)
        raise UsageError(f"mappings/{plan.table.name}.yaml declares no TF reference to verify with")
    module, cls = RUNNER_CLASSES[name]
    return getattr(importlib.import_module(module, __package__), cls)


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


def quiet_tensorflow() -> None:
    """TensorFlow imported now, its start-up notices hidden (tf_import.py), before anything that
    would import it loudly (transformers' TF classes, Keras 3 on the TensorFlow backend)."""
    tensorflow()


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


class _MappedH5Arrays:
    """numpy, except that `asarray` of a contiguous h5py dataset maps it from its file.

    transformers' TF loader reads every array of a tf_model.h5 into memory, then assigns them
    all: for a moment the model is in memory twice, besides TensorFlow itself (3.3× the model
    for an XLM-R-large-sized one). Handed maps of the same bytes instead, it reads each array
    from the page cache as it assigns it: the same values, through transformers' own loader,
    with no second copy owned by the process."""

    def __init__(self, numpy):
        self._numpy = numpy

    def __getattr__(self, name: str):
        return getattr(self._numpy, name)

    def asarray(self, value, *args, **kwargs):
        import h5py

        if isinstance(value, h5py.Dataset) and not args and not kwargs:
            offset = value.id.get_offset()
            if offset is not None and value.chunks is None and value.dtype.isnative:
                return np.memmap(
                    value.file.filename, value.dtype, "r", offset, value.shape, order="C"
                )
        return self._numpy.asarray(value, *args, **kwargs)


@contextlib.contextmanager
def _mapped_h5_arrays() -> Iterator[None]:
    """transformers' TF loader, for the duration, reads tf_model.h5 arrays as file maps."""
    from transformers import modeling_tf_utils

    original = modeling_tf_utils.np
    modeling_tf_utils.np = _MappedH5Arrays(original)
    try:
        yield
    finally:
        modeling_tf_utils.np = original


def transformers_tf_class(plan: Plan, config_location: Path) -> tuple[Any, type, Any]:
    """TensorFlow (quiet, seeded), the plan's transformers `TF*` class, and its config read from
    `config_location` with `num_labels` as the weights hold it."""
    quiet_tensorflow()
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
        # the config the conversion read: the one beside the weights, or the --config file
        tf, cls, config = transformers_tf_class(plan, source.config_path or directory)
        with _zero_initializers(cls, tf), _mapped_h5_arrays():
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

        self.feeds = feeds(plan.table.reference)

    def run(self, batch: Batch) -> Outputs:
        feed = batch.feed(self.feeds)
        result = self.model(**feed, output_hidden_states=True, training=False)
        if result.hidden_states is None:
            # transformers 4.x TF*ForMultipleChoice passes output_hidden_states positionally into
            # the encoder_attention_mask slot of its main layer, so it never returns hidden
            # states. The main layer itself, on the flattened choices, is the same computation.
            width = batch.input_ids.shape[-1]
            flat = {k: v.reshape(-1, width) for k, v in feed.items()}
            main_layer = getattr(self.model, self.model.base_model_prefix)
            inner = main_layer(**flat, output_hidden_states=True, training=False)
            result["hidden_states"] = inner.hidden_states
        return ordered_outputs(result, lambda t: np.asarray(t, dtype=np.float32))
