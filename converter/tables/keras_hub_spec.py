"""The keras-hub runner's own keys in a table's `reference:` block. Data only (no TensorFlow):
checked when the table loads (reference.RUNNERS["keras-hub"].validate), read by verify/keras_hub.py.

    reference:
      runner: keras-hub
      hidden_states: [embeddings_layer_norm, transformer_layers]
        # backbone attributes, in order, holding the layers whose outputs are the hidden states:
        # a layer or a (nested) list of layers, one hidden state per call. An entry that is a
        # list names alternatives, the first attribute the backbone has.
      heads:
        masked-lm:
          head_as_target: {activation: hidden_act, layer_norm_epsilon: layer_norm_eps}
            # the PyTorch class computes keras-hub's MaskedLMHead with this activation and this
            # LayerNorm epsilon (a config key, or the value itself) where keras-hub's differ:
            # parity runs the head this way, and reports the difference to keras-hub's own.
"""

from __future__ import annotations

from typing import Any

from ..errors import MappingTableError

AS_TARGET_KEYS = frozenset({"activation", "layer_norm_epsilon"})


def _names(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
    )


def check_block(where: str, block: dict[str, Any]) -> None:
    hidden = block.get("hidden_states")
    if not isinstance(hidden, list) or not hidden or not all(_names(e) for e in hidden):
        raise MappingTableError(
            f"{where}.hidden_states: a list of backbone attribute names (an entry may be a list "
            "of alternatives)"
        )
    for head, facts in (block.get("heads") or {}).items():
        as_target = (facts or {}).get("head_as_target")
        if as_target is None:
            continue
        w = f"{where}.heads.{head}.head_as_target"
        if not isinstance(as_target, dict) or not as_target:
            raise MappingTableError(f"{w}: a mapping of {sorted(AS_TARGET_KEYS)}")
        unknown = set(as_target) - AS_TARGET_KEYS
        if unknown:
            raise MappingTableError(f"{w}: unknown key(s) {sorted(unknown)}")
        if not all(isinstance(v, str | float | int) for v in as_target.values()):
            raise MappingTableError(f"{w}: each value is a config key or a number")


def head_as_target(extra: dict[str, Any], dims: dict[str, Any]) -> dict[str, Any]:
    """The head's `head_as_target:` with config keys replaced by the converted config's values."""
    return {
        key: dims[value] if isinstance(value, str) and value in dims else value
        for key, value in (extra.get("head_as_target") or {}).items()
    }
