"""The `tf1-encoder` runner's part of a table's `reference:` block, checked when the table loads.

The reference is a post-LayerNorm BERT-style encoder (google-research bert, albert, electra
`modeling.py`) written in TF ops. It reads the checkpoint's OWN variable names, through the role
templates below, never through the mapping rules: it is what the conversion is checked against.
Dense scopes hold `kernel` ([in, out], or 3-D [in, heads, size] / [heads, size, out], used as
the 2-D matrix it is) and `bias`; LayerNorm scopes hold `gamma` and `beta`.

    reference:
      runner: tf1-encoder
      layer_norm_eps: 1.0e-12        # what the original code fixes and its config does not say
      mask_adder: -10000.0           # added to the attention scores of padding positions
      activations: {gelu: gelu_tanh, relu: relu}  # config hidden_act → op (ACTIVATIONS)
      embeddings:                    # variable names; token_type optional
        word: bert/embeddings/word_embeddings
        position: bert/embeddings/position_embeddings
        token_type: bert/embeddings/token_type_embeddings
        layer_norm: bert/embeddings/LayerNorm
      encoders:                      # one or more, chosen per head (default: the first)
        bert:
          embeddings: {…}            # optional, replaces the block's embeddings for this encoder
          project: electra/embeddings_project   # optional embedding→hidden dense, before layer 0
          layer: "bert/encoder/layer_{L}"  # {L} = the layer index; no {L}: one layer shared by all;
                                     # {G}: layer L runs group L × groups ÷ layers (ALBERT)
          layers_from: num_hidden_layers   # optional config keys (these are the defaults)
          groups_from: num_hidden_groups
          heads_from: num_attention_heads
          activation_from: hidden_act
          roles:                     # dense / LayerNorm scopes under `layer`
            query: attention/self/query
            key: attention/self/key
            value: attention/self/value
            attention_output: attention/output/dense
            attention_layer_norm: attention/output/LayerNorm
            intermediate: intermediate/dense
            output: output/dense
            output_layer_norm: output/LayerNorm
      heads:
        pretraining:
          encoder: bert              # optional
          outputs:                   # PyTorch output name → op chain on the last hidden state,
            prediction_logits:       #   in the PyTorch model's output order
              - {dense: cls/predictions/transform/dense}
              - {activation: hidden_act}   # the config's activation, or an ACTIVATIONS op
              - {layer_norm: cls/predictions/transform/LayerNorm}
              - {matmul_transposed: bert/embeddings/word_embeddings}   # x · Wᵀ
              - {add_bias: cls/predictions/output_bias}
            seq_relationship_logits: [*pooled, {matmul_transposed: …}, {add_bias: …}]

Chain steps: `first_token` (x[:, 0]), `squeeze_last`, `{dense: scope}`, `{layer_norm: scope}`,
`{activation: name}`, `{matmul: var}`, `{matmul_transposed: var}`, `{add_bias: var}`,
`{column: i}` (x[..., i]). A step may also be a list of steps (a YAML alias such as `*pooled`),
spliced in place.
"""

from __future__ import annotations

from typing import Any

from ..errors import MappingTableError

ACTIVATIONS = ("gelu_tanh", "gelu_exact", "relu", "tanh", "linear")
CONFIG_ACTIVATION = "hidden_act"
ROLES = (
    "query",
    "key",
    "value",
    "attention_output",
    "attention_layer_norm",
    "intermediate",
    "output",
    "output_layer_norm",
)
EMBEDDING_KEYS = {"word", "position", "token_type", "layer_norm"}
EMBEDDING_REQUIRED = {"word", "position", "layer_norm"}
ENCODER_KEYS = {
    "embeddings",
    "project",
    "layer",
    "layers_from",
    "heads_from",
    "activation_from",
    "groups_from",
    "roles",
}
BLOCK_REQUIRED = {"layer_norm_eps", "mask_adder", "activations", "encoders"}
WORD_STEPS = {"first_token", "squeeze_last"}
NAMED_STEPS = {
    "dense",
    "layer_norm",
    "activation",
    "matmul",
    "matmul_transposed",
    "add_bias",
    "column",  # {column: i}: x[..., i], one logit of several (start/end of a span head)
}
INDEX_STEPS = {"column"}  # their argument is an index, not a variable


def _fail(where: str, what: str) -> MappingTableError:
    return MappingTableError(f"{where}: {what}")


def _names(where: str, data: Any, allowed: set[str], required: set[str]) -> dict[str, str]:
    if not isinstance(data, dict):
        raise _fail(where, "expected a mapping")
    if set(data) - allowed or required - set(data):
        raise _fail(where, f"needs {sorted(required)}, may have {sorted(allowed - required)}")
    if not all(isinstance(v, str) and v for v in data.values()):
        raise _fail(where, "every entry must be a variable or scope name")
    return data


def flatten(chain: list) -> list:
    """A chain with its nested lists (YAML aliases) spliced in."""
    steps: list = []
    for step in chain:
        steps.extend(flatten(step) if isinstance(step, list) else [step])
    return steps


def check_chain(where: str, chain: Any) -> None:
    if not isinstance(chain, list) or not chain:
        raise _fail(where, "an output is a non-empty list of steps")
    for i, step in enumerate(flatten(chain)):
        w = f"{where}[{i}]"
        if isinstance(step, str):
            if step not in WORD_STEPS:
                raise _fail(w, f"'{step}' is not one of {sorted(WORD_STEPS)} (or a one-key map)")
            continue
        if not (isinstance(step, dict) and len(step) == 1):
            raise _fail(w, f"a step is one of {sorted(WORD_STEPS)} or a one-key map")
        ((op, arg),) = step.items()
        if op not in NAMED_STEPS:
            raise _fail(w, f"'{op}' is not one of {sorted(NAMED_STEPS)}")
        if op in INDEX_STEPS:
            if not isinstance(arg, int) or isinstance(arg, bool) or arg < 0:
                raise _fail(w, f"{op} needs a non-negative integer index")
            continue
        if op == "activation" and arg not in (*ACTIVATIONS, CONFIG_ACTIVATION):
            raise _fail(w, f"activation '{arg}' is not {CONFIG_ACTIVATION} or one of {ACTIVATIONS}")
        if not isinstance(arg, str) or not arg:
            raise _fail(w, f"{op} needs a variable or scope name")


def check_block(where: str, block: dict[str, Any]) -> None:
    missing = BLOCK_REQUIRED - set(block)
    if missing:
        raise _fail(where, f"runner tf1-encoder needs {sorted(missing)}")
    for key in ("layer_norm_eps", "mask_adder"):
        if not isinstance(block[key], int | float):
            raise _fail(f"{where}.{key}", "must be a number")
    activations = block["activations"]
    if not isinstance(activations, dict) or not set(activations.values()) <= set(ACTIVATIONS):
        raise _fail(f"{where}.activations", f"maps config names to {ACTIVATIONS}")
    encoders = block["encoders"]
    if not isinstance(encoders, dict) or not encoders:
        raise _fail(f"{where}.encoders", "name at least one encoder")
    for name, encoder in encoders.items():
        w = f"{where}.encoders.{name}"
        if not isinstance(encoder, dict) or set(encoder) - ENCODER_KEYS:
            raise _fail(w, f"an encoder has keys {sorted(ENCODER_KEYS)}")
        if not isinstance(encoder.get("layer"), str):
            raise _fail(w, "needs `layer:`, the layer scope (with {L}, or one shared scope)")
        if encoder["layer"].replace("{L}", "").replace("{G}", "").count("{"):
            raise _fail(w, "the layer scope's placeholders are {L} and {G}")
        _names(f"{w}.roles", encoder.get("roles"), set(ROLES), set(ROLES))
        embeddings = encoder.get("embeddings", block.get("embeddings"))
        if embeddings is None:
            raise _fail(w, "needs `embeddings:` (its own or the block's)")
        _names(f"{w}.embeddings", embeddings, EMBEDDING_KEYS, EMBEDDING_REQUIRED)
    for head, facts in (block.get("heads") or {}).items():
        w = f"{where}.heads.{head}"
        if facts.get("encoder", next(iter(encoders))) not in encoders:
            raise _fail(w, f"encoder '{facts['encoder']}' is not one of {sorted(encoders)}")
        for output, chain in (facts.get("outputs") or {}).items():
            check_chain(f"{w}.outputs.{output}", chain)
