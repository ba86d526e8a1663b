"""The TF reference for TF Model Garden BERT checkpoints: Model Garden's own classes.

A bare checkpoint holds no graph, so the network is rebuilt from `official.nlp.modeling` with the
dimensions the conversion inferred, and TF restores the checkpoint into it by its object graph
(every restored object must match). The encoder returns each layer's output (`encoder_outputs`)
and `pooled_output`; the embedding output is the encoder's own embedding layers applied in its
order. Model Garden is a test/verify-time dependency (`tf-models-no-deps`), imported lazily.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ParityError, UsageError
from ..plan.accounting import Plan
from ..readers import Source
from ..tables.reference import feeds, head_facts
from ..tf_import import tensorflow
from .inputs import Batch

MASKED_LM = "mlm_logits"  # an output of BertPretrainerV2, asked for at every position
ACTIVATION_KEY = "hidden_act"  # bert_config.json's name, which Model Garden's BertConfig reads
NEXT_SENTENCE = "next_sentence"  # BertPretrainerV2's classification head of that name


def _official():
    tensorflow()
    try:
        from official.nlp.modeling import layers, models, networks
    except ImportError as exc:
        raise UsageError(
            f"verifying a Model Garden checkpoint needs TF Model Garden ({exc})",
            hint="pip install --no-deps tf-models-no-deps==2.19.0 gin-config scipy",
        ) from None
    return layers, models, networks


def _approximate_gelu(tf):
    """Model Garden's "gelu" (official.modeling.activations.gelu): the tanh form."""
    return lambda x: tf.keras.activations.gelu(x, approximate=True)


def _encoder_kwargs(dims: dict[str, Any]) -> dict[str, Any]:
    return {
        "vocab_size": int(dims["vocab_size"]),
        "hidden_size": int(dims["hidden_size"]),
        "num_layers": int(dims["num_hidden_layers"]),
        "num_attention_heads": int(dims["num_attention_heads"]),
        "max_sequence_length": int(dims["max_position_embeddings"]),
        "type_vocab_size": int(dims["type_vocab_size"]),
        "output_dropout": 0.0,
        "attention_dropout": 0.0,
    }


def _activation(source: Source):
    """The source config's activation as Model Garden's own code reads it (its BERT tools
    build encoders with tf_utils.get_activation(bert_config.hidden_act): "gelu" is the tanh
    form), or None when the config names none: the encoder classes' default, that same gelu."""
    name = source.config.get(ACTIVATION_KEY)
    if name is None:
        return None
    from official.modeling import tf_utils

    try:
        return tf_utils.get_activation(name)
    except ValueError:
        raise ParityError(
            f"the config's {ACTIVATION_KEY} '{name}' is not an activation Model Garden knows",
            source.config_path or source.path,
        ) from None


def _classifier(parts, runner: ModelGardenRunner, dims, kwargs, activation):
    """BertClassifier over a BertEncoder, saved as tf.train.Checkpoint(model=…)."""
    layers, models, networks = parts
    runner.encoder = networks.BertEncoder(
        intermediate_size=int(dims["intermediate_size"]), dict_outputs=True, **kwargs
    )
    runner.model = models.BertClassifier(
        network=runner.encoder, num_classes=int(dims["num_labels"]), dropout_rate=0.0
    )
    return {"model": runner.model}


def _encoder(parts, runner: ModelGardenRunner, dims, kwargs, activation):
    """BertEncoderV2 alone, saved as tf.train.Checkpoint(encoder=…)."""
    layers, models, networks = parts
    runner.encoder = networks.BertEncoderV2(inner_dim=int(dims["intermediate_size"]), **kwargs)
    runner.model = None
    return {"encoder": runner.encoder}


def _pretrainer(parts, runner: ModelGardenRunner, dims, kwargs, activation):
    """BertPretrainerV2 (masked LM, and a next-sentence head when the table reads one), saved as
    tf.train.Checkpoint(model=…, **pretrainer.checkpoint_items)."""
    layers, models, networks = parts
    _encoder(parts, runner, dims, kwargs, activation)
    heads = []
    if NEXT_SENTENCE in runner.outputs.values():
        heads = [
            layers.ClassificationHead(
                inner_dim=int(dims["hidden_size"]),
                num_classes=2,
                dropout_rate=0.0,
                name=NEXT_SENTENCE,
            )
        ]
    # The MLM transform's activation is not stored. transformers applies hidden_act there, and so
    # does Model Garden's TF1 → TF2 converter (its BERT pretraining experiments set
    # mlm_activation "gelu", the default below).
    runner.model = models.BertPretrainerV2(
        encoder_network=runner.encoder,
        classification_heads=heads,
        mlm_activation=activation or _approximate_gelu(runner.tf),
    )
    return {"model": runner.model, **runner.model.checkpoint_items}


# What each Model Garden class a table names (a head's `source_class`) is built as, and which
# objects its checkpoint was saved under.
BUILDERS = {
    "BertClassifier": _classifier,
    "BertEncoderV2": _encoder,
    "BertPretrainerV2": _pretrainer,
}


class ModelGardenRunner:
    framework = "tensorflow"

    @staticmethod
    def reference(source: Source, plan: Plan) -> str:
        return "TF Model Garden's own network classes, restored from the checkpoint"

    def __init__(self, source: Source, plan: Plan):
        tf = tensorflow()
        self.tf = tf
        parts = _official()
        kwargs = _encoder_kwargs(plan.dims)
        # PyTorch output ← Model Garden output, and its input names, as the table declares
        self.outputs = head_facts(plan.table.reference, plan.head).outputs
        self.feeds = feeds(plan.table.reference)
        self.masked_lm = MASKED_LM in self.outputs.values()
        kind = plan.table.heads[plan.head].source_class
        if kind not in BUILDERS:
            raise UsageError(
                f"mappings/{plan.table.name}.yaml: head {plan.head}'s source_class '{kind}' is "
                f"not a Model Garden class the reference builds ({', '.join(BUILDERS)})"
            )
        activation = _activation(source)
        if activation is not None:  # BertEncoder's `activation` is BertEncoderV2's inner one
            kwargs["inner_activation"] = activation
        roots = BUILDERS[kind](parts, self, plan.dims, kwargs, activation)
        self._build()
        status = tf.train.Checkpoint(**roots).read(str(source.weight_files[0].with_suffix("")))
        try:
            status.assert_existing_objects_matched()
            status.expect_partial()
        except AssertionError as exc:
            raise ParityError(
                f"Model Garden's {kind} does not match the checkpoint ({str(exc)[:200]})",
                source.path,
            ) from None

    def _feed(self, batch: Batch) -> dict[str, Any]:
        tf = self.tf
        return {k: tf.constant(v.astype(np.int32)) for k, v in batch.feed(self.feeds).items()}

    def _build(self) -> None:
        ones = np.ones((1, 4), dtype=np.int32)
        feed = self._feed(Batch(ones, ones, ones * 0))
        if self.masked_lm:
            feed["masked_lm_positions"] = self.tf.constant(np.zeros((1, 1), np.int32))
        (self.model or self.encoder)(feed, training=False)

    def _embeddings(self, feed: dict[str, Any]):
        e = self.encoder
        words = e._embedding_layer(feed["input_word_ids"])
        summed = words + e._position_embedding_layer(words)
        summed += e._type_embedding_layer(feed["input_type_ids"])
        return e._embedding_norm_layer(summed)

    def run(self, batch: Batch) -> dict[str, np.ndarray]:
        tf = self.tf
        feed = self._feed(batch)
        hidden = [self._embeddings(feed)]
        if self.masked_lm:  # the pretrainer returns the encoder's outputs with its heads'
            rows, width = batch.input_ids.shape
            feed["masked_lm_positions"] = tf.constant(
                np.tile(np.arange(width, dtype=np.int32), (rows, 1))
            )
            result = dict(self.model(feed, training=False))
        else:
            result = dict(self.encoder(feed, training=False))
            if self.model is not None:
                result["classifier"] = self.model(feed, training=False)
        hidden += list(result["encoder_outputs"])
        outputs = {name: result[source] for name, source in self.outputs.items()}
        ordered = {f"hidden_states[{i}]": h for i, h in enumerate(hidden)} | outputs
        return {k: np.asarray(v, dtype=np.float32) for k, v in ordered.items()}
