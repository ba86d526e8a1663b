"""Model runners for parity: the source's faithful TF model and the converted PyTorch model.

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

    def run(self, batch: Batch) -> Outputs: ...


def ordered_outputs(model_output: Any, to_numpy: Callable[[Any], np.ndarray]) -> Outputs:
    """Hidden states first, then every other output in the order the model returns them."""
    outputs = {f"hidden_states[{i}]": to_numpy(h) for i, h in enumerate(model_output.hidden_states)}
    for key, value in model_output.items():
        if key not in SKIPPED_OUTPUTS and value is not None:
            outputs[key] = to_numpy(value)
    return outputs


def _loading_problems(info: dict[str, Any], harmless: set[str] = frozenset()) -> list[str]:
    return [f"{k}: {sorted(set(v) - harmless)[:5]}" for k, v in info.items() if set(v) - harmless]


def _weightless_layers(unexpected: list[str], source: Source) -> set[str]:
    """Unexpected Keras layers that hold no weights in the source (dropout_29, …): the h5 keeps
    an empty group for them and the TF loader lists them. A layer that holds weights is never
    among these: every stored tensor's name starts with its layer."""
    holding = {t.name.split("/", 1)[0] for t in source.tensors}
    layer_names = {u for u in unexpected if "/" not in u}  # weight names are never excused
    return layer_names - holding


def _quiet_transformers() -> None:
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


class HfKerasTfRunner:
    """transformers' own TF class (4.x), built from the source config and weights."""

    framework = "tensorflow"

    def __init__(self, source: Source, plan: Plan):
        _quiet_tensorflow()
        import tensorflow as tf
        import transformers

        tf.keras.utils.set_random_seed(0)
        _quiet_transformers()
        cls = getattr(transformers, "TF" + plan.class_name)
        directory = source.weight_files[0].parent
        config = cls.config_class.from_pretrained(str(directory))
        config.num_labels = int(plan.dims["num_labels"])
        with _zero_initializers(cls, tf):
            self.model, info = cls.from_pretrained(
                str(directory), config=config, output_loading_info=True
            )
        harmless = _weightless_layers(info.get("unexpected_keys", []), source)
        problems = _loading_problems(info, harmless)
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


class TorchRunner:
    """The converted model, loaded strictly from the output directory alone."""

    framework = "pytorch"

    def __init__(self, out_dir: Path, class_name: str):
        import torch
        import transformers

        torch.manual_seed(0)
        _quiet_transformers()
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        self.torch = torch
        cls = getattr(transformers, class_name)
        self.model, info = cls.from_pretrained(str(out_dir), output_loading_info=True)
        problems = _loading_problems(info)
        on_meta = [n for n, p in self.model.named_parameters() if p.device.type == "meta"]
        if on_meta:
            problems.append(f"parameters left on the meta device: {on_meta[:5]}")
        if problems:
            raise ParityError(
                "the converted model does not load strictly: " + "; ".join(problems), out_dir
            )
        self.model.eval()

    def run(self, batch: Batch) -> Outputs:
        torch = self.torch
        feed = {k: torch.from_numpy(v.astype(np.int64)) for k, v in batch.as_dict().items()}
        with torch.no_grad():
            result = self.model(**feed, output_hidden_states=True, return_dict=True)
        return ordered_outputs(result, lambda t: t.detach().float().numpy())


TF_RUNNERS: dict[str, Callable[[Source, Plan], Runner]] = {
    "hf-keras": HfKerasTfRunner,
}
