"""The TF reference for a SavedModel: the SavedModel itself, as its author exported it.

Nothing is rebuilt: `tf.saved_model.load` restores the exported graph and its variables, and the
restored callable is run on the parity batch. TF Hub BERT encoders take `input_word_ids`,
`input_mask`, `input_type_ids` and return `encoder_outputs` (one per layer) and `pooled_output`,
so the comparison is layer by layer from layer 1 (the embedding output is not exposed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ParityError
from ..plan.accounting import Plan
from ..readers import Source
from ..tf_import import tensorflow
from .inputs import Batch


class SavedModelRunner:
    framework = "tensorflow"

    @staticmethod
    def reference(source: Source, plan: Plan) -> str:
        return "the SavedModel's own restored model (TF Hub BERT: encoder_outputs per layer)"

    def __init__(self, source: Source, plan: Plan):
        tf = tensorflow()
        self.tf = tf
        directory = source.weight_files[0].parent.parent  # …/variables/variables.index
        try:
            self.model = tf.saved_model.load(str(directory))
        except (tf.errors.OpError, ValueError, KeyError) as exc:
            raise ParityError(f"TensorFlow cannot load the SavedModel ({exc})", directory) from None
        if not callable(self.model):
            raise ParityError("the SavedModel has no callable to run", directory)

    def run(self, batch: Batch) -> dict[str, np.ndarray]:
        tf = self.tf
        ids = batch.input_ids.astype(np.int32)
        types = batch.token_type_ids if batch.token_type_ids is not None else ids * 0
        feed = {
            "input_word_ids": tf.constant(ids),
            "input_mask": tf.constant(batch.attention_mask.astype(np.int32)),
            "input_type_ids": tf.constant(types.astype(np.int32)),
        }
        result: dict[str, Any] = self.model(feed, training=False)
        layers = list(result["encoder_outputs"])
        outputs = {f"hidden_states[{i + 1}]": h for i, h in enumerate(layers)}
        outputs["pooler_output"] = result["pooled_output"]
        return {k: np.asarray(v, dtype=np.float32) for k, v in outputs.items()}


class ServingSignatureRunner:
    """A SavedModel of a transformers TF class, run through its `serving_default` signature
    (inputs `input_ids`, `attention_mask`, `token_type_ids`). It returns only final outputs:
    `last_hidden_state` is compared as the last hidden state, the rest under their own names."""

    framework = "tensorflow"

    @staticmethod
    def reference(source: Source, plan: Plan) -> str:
        return "the SavedModel's serving signature (serving_default)"

    def __init__(self, source: Source, plan: Plan):
        tf = tensorflow()
        self.tf = tf
        self.layers = int(plan.dims["num_hidden_layers"])
        directory = source.weight_files[0].parent.parent
        try:
            self.signature = tf.saved_model.load(str(directory)).signatures["serving_default"]
        except (tf.errors.OpError, ValueError, KeyError) as exc:
            raise ParityError(
                f"the SavedModel has no usable serving_default signature ({exc})", directory
            ) from None
        self.inputs = self.signature.structured_input_signature[1]

    def run(self, batch: Batch) -> dict[str, np.ndarray]:
        tf = self.tf
        feed = {
            name: tf.constant(value.astype(spec.dtype.as_numpy_dtype))
            for name, value in batch.as_dict().items()
            if (spec := self.inputs.get(name)) is not None
        }
        if "token_type_ids" in self.inputs and "token_type_ids" not in feed:
            feed["token_type_ids"] = tf.zeros_like(feed["input_ids"])
        result = self.signature(**feed)
        outputs = {}
        if "last_hidden_state" in result:
            outputs[f"hidden_states[{self.layers}]"] = result["last_hidden_state"]
        for name, value in result.items():
            if name not in ("last_hidden_state", "hidden_states", "attentions"):
                outputs[name] = value
        return {k: np.asarray(v, dtype=np.float32) for k, v in outputs.items()}
