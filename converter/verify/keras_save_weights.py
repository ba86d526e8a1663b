"""The TF reference for a Keras `save_weights` TF-format checkpoint of a transformers TF class.

The checkpoint is the producer's own: transformers' `TF*` class (4.x) is built from the
config.json beside it and restored with `model.load_weights(prefix)`, Keras' own reader of that
format, which matches variables by the same object graph the conversion reads. Every variable of
the model must be restored from it (a variable left at its initial value would make the reference
a different model), and the outputs are read as for a `tf_model.h5` source.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ParityError
from ..plan.accounting import Plan
from ..readers import Source
from ..tables.reference import feeds
from .runners import HfKerasTfRunner, _zero_initializers, transformers_tf_class

INDEX_SUFFIX = ".index"


def checkpoint_prefix(source: Source) -> Path:
    """`dir/ckpt` from `dir/ckpt.index`, the form `load_weights` takes."""
    index = source.weight_files[0]
    return index.with_name(index.name.removesuffix(INDEX_SUFFIX))


class KerasSaveWeightsRunner(HfKerasTfRunner):
    """transformers' TF class from the source config, restored with Keras `load_weights`."""

    @staticmethod
    def reference(source: Source, plan: Plan) -> str:
        return f"transformers' TF{plan.class_name} restored with load_weights"

    def __init__(self, source: Source, plan: Plan):
        if source.config_path is None:
            raise ParityError("has no config.json to build the TF model from", source.path)
        tf, cls, config = transformers_tf_class(plan, source.config_path)
        self.feeds = feeds(plan.table.reference)
        prefix = checkpoint_prefix(source)
        with _zero_initializers(cls, tf):
            self.model = cls(config)
            self.model(self.model.dummy_inputs, training=False)
        status = self.model.load_weights(str(prefix))
        try:
            status.expect_partial().assert_existing_objects_matched()
        except AssertionError as exc:
            first = str(exc).splitlines()[0][:300]
            raise ParityError(
                f"the source TF model did not load completely from the checkpoint ({first})",
                prefix,
            ) from None
