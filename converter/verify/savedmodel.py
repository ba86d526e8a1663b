"""The TF reference for a SavedModel: the SavedModel itself, as its author exported it.

Nothing is rebuilt: `tf.saved_model.load` restores the exported graph and its variables, and the
restored callable is run on the parity batch under the input names the table's `feeds:` give.
TF Hub BERT encoders return `encoder_outputs` (one per layer) and `pooled_output`, so the
comparison is layer by layer from layer 1 (the embedding output is not exposed); a head's other
outputs are the table's `outputs:` facts (`pooled_output` of the callable, `mlm_logits` of the
`mlm` sub-model a `with_mlm=True` export carries, asked for every position).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import ParityError
from ..plan.accounting import Plan
from ..readers import Source
from ..tables.reference import feeds, head_facts
from ..tf_import import tensorflow
from .inputs import Batch

MLM_SUBMODEL = "mlm"  # export_tfhub_lib's with_mlm=True: core_model.mlm, a BertPretrainerV2
MLM_POSITIONS = "masked_lm_positions"


class SavedModelRunner:
    framework = "tensorflow"

    @staticmethod
    def reference(source: Source, plan: Plan) -> str:
        return "the SavedModel's own restored model (TF Hub BERT: encoder_outputs per layer)"

    def __init__(self, source: Source, plan: Plan):
        tf = tensorflow()
        self.tf = tf
        self.feeds = feeds(plan.table.reference)
        self.outputs = head_facts(plan.table.reference, plan.head).outputs
        directory = source.weight_files[0].parent.parent  # …/variables/variables.index
        try:
            self.model = tf.saved_model.load(str(directory))
        except (tf.errors.OpError, ValueError, KeyError) as exc:
            raise ParityError(f"TensorFlow cannot load the SavedModel ({exc})", directory) from None
        if not callable(self.model):
            raise ParityError("the SavedModel has no callable to run", directory)
        wants_mlm = "mlm_logits" in self.outputs.values()
        if wants_mlm and not callable(getattr(self.model, MLM_SUBMODEL, None)):
            raise ParityError(
                f"the SavedModel has no '{MLM_SUBMODEL}' model to compute masked-LM logits with "
                "(it was exported without with_mlm=True)",
                directory,
            )

    def run(self, batch: Batch) -> dict[str, np.ndarray]:
        tf = self.tf
        feed = {name: tf.constant(v.astype(np.int32)) for name, v in batch.feed(self.feeds).items()}
        result: dict[str, Any] = self.model(feed, training=False)
        outputs = {f"hidden_states[{i + 1}]": h for i, h in enumerate(result["encoder_outputs"])}
        for name, source in self.outputs.items():
            outputs[name] = OUTPUT_SOURCES[source](self, feed, result)
        return {k: np.asarray(v, dtype=np.float32) for k, v in outputs.items()}


def _pooled_output(runner: SavedModelRunner, feed: dict[str, Any], result: dict[str, Any]):
    return result["pooled_output"]


def _mlm_logits(runner: SavedModelRunner, feed: dict[str, Any], result: dict[str, Any]):
    """The `mlm` sub-model's logits at every position, so they cover the whole sequence."""
    ids = next(iter(feed.values()))  # every input is [rows, width]
    rows, width = ids.shape
    every = runner.tf.constant(np.tile(np.arange(width, dtype=np.int32), (rows, 1)))
    mlm = getattr(runner.model, MLM_SUBMODEL)
    return mlm({**feed, MLM_POSITIONS: every}, training=False)["mlm_logits"]


# `outputs:` values of a saved-model table (RUNNERS["saved-model"] in tables/reference.py)
OUTPUT_SOURCES: dict[str, Callable[[SavedModelRunner, dict[str, Any], dict[str, Any]], Any]] = {
    "pooled_output": _pooled_output,
    "mlm_logits": _mlm_logits,
}


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
