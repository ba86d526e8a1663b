"""The `reference:` block of a mapping table: which TF model a source is checked against, and the
facts that model needs. Data only (no TensorFlow): `converter.tables` validates every table's
block with `check_reference` when it loads, and parity asks the helpers below.

    reference:                       # a top-level key, last in the table; `extends:` inherits it,
      runner: transformers-tf        #   a child's keys win and its `heads:` merge by head name
      feeds:                         # optional: the reference's input name → the batch field fed
        token_ids: input_ids         #   to it (input_ids, attention_mask, token_type_ids). Default:
        padding_mask: attention_mask #   all three under their own names. Leaving token_type_ids
                                     #   out means the model has none: neither side gets them.
      heads:                         # optional, per head of the table
        multiple-choice:
          input_shape: choices       # [batch, choices, length] on BOTH sides (default: sequence)
        sequence-classification:
          outputs: {logits: task_output}   # PyTorch output ← what the runner reads it from
      ...                            # the runner's own keys (RUNNERS[name].keys)

Runner names and what they read (`outputs:` values for keras-hub; op chains for tf1-encoder,
whose schema is in tf1_encoder_spec.py):
    transformers-tf      transformers' TF* class (4.x) from tf_model.h5; outputs by HF name
    keras-save-weights   the same class restored with Keras load_weights
    keras-hub            keras-hub's own model; keys `hidden_states` (backbone attributes holding
                         the embedding output and the layers), outputs `task_output` |
                         `masked_lm_every_position` | `pooled_output`; head key `head_as_target`
                         (keras_hub_spec.py)
    tf1-encoder          a post-LayerNorm BERT-style encoder in TF ops on the checkpoint's own names
    model-garden         Model Garden's own classes; outputs `mlm_logits` | `next_sentence` |
                         `pooled_output` (the encoder's) | `classifier` (BertClassifier's)
    saved-model          a TF2 SavedModel's restored callable, fed by `feeds:`; outputs
                         `pooled_output` | `mlm_logits` (its `mlm` sub-model's: savedmodel.py)
    serving-signature    a TF2 SavedModel's serving_default signature
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import MappingTableError
from .keras_hub_spec import check_block as check_keras_hub_block
from .tf1_encoder_spec import check_block as check_tf1_encoder_block

BATCH_FIELDS = ("input_ids", "attention_mask", "token_type_ids")
DEFAULT_FEEDS = {name: name for name in BATCH_FIELDS}
INPUT_SHAPES = ("sequence", "choices")
COMMON_KEYS = {"runner", "feeds", "heads"}
HEAD_KEYS = {"input_shape", "outputs"}

Validator = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class RunnerEntry:
    """What a runner's `reference:` block may say: the optional modules verifying with it needs,
    and the block keys it reads beyond the common ones. (Which class implements each runner is
    verify's business: converter/verify/runners.py.)"""

    modules: tuple[str, ...] = ()
    keys: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()  # of `keys`
    head_keys: frozenset[str] = frozenset()
    output_sources: frozenset[str] | None = None  # allowed `outputs:` values; None: none allowed
    validate: Validator | None = None  # checks the runner's own keys


RUNNERS: dict[str, RunnerEntry] = {
    "transformers-tf": RunnerEntry(("tf_keras",)),
    "keras-save-weights": RunnerEntry(("tf_keras",)),
    "keras-hub": RunnerEntry(
        ("keras", "keras_hub"),
        keys=frozenset({"hidden_states"}),
        required=frozenset({"hidden_states"}),
        head_keys=frozenset({"head_as_target"}),
        output_sources=frozenset({"task_output", "masked_lm_every_position", "pooled_output"}),
        validate=check_keras_hub_block,
    ),
    "tf1-encoder": RunnerEntry(
        keys=frozenset({"layer_norm_eps", "mask_adder", "activations", "embeddings", "encoders"}),
        head_keys=frozenset({"encoder"}),
        output_sources=frozenset(),  # op chains, checked by its validator
        validate=check_tf1_encoder_block,
    ),
    # Model Garden checkpoints also need tf-models-no-deps, said by their runner.
    "model-garden": RunnerEntry(
        output_sources=frozenset({"mlm_logits", "next_sentence", "pooled_output", "classifier"}),
    ),
    "saved-model": RunnerEntry(output_sources=frozenset({"pooled_output", "mlm_logits"})),
    "serving-signature": RunnerEntry(),
}


@dataclass(frozen=True)
class HeadFacts:
    input_shape: str = "sequence"
    outputs: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # the runner's own head keys


def _mapping(where: str, data: Any) -> dict:
    if not isinstance(data, dict):
        raise MappingTableError(f"{where}: expected a mapping, got {type(data).__name__}")
    return data


def _known(where: str, data: dict, allowed: set[str] | frozenset[str]) -> None:
    unknown = set(data) - set(allowed)
    if unknown:
        raise MappingTableError(
            f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
        )


def merge_references(parent: dict | None, child: dict | None) -> dict | None:
    """`extends:`: the child's keys win; `heads:` merge by head name."""
    if parent is None and child is None:
        return None
    parent, child = parent or {}, child or {}
    merged = {**parent, **child}
    if "heads" in parent or "heads" in child:
        merged["heads"] = {**(parent.get("heads") or {}), **(child.get("heads") or {})}
    return merged


def check_reference(where: str, data: Any, heads: set[str]) -> dict[str, Any]:
    """The validated block (an empty dict when the table declares none). `where` names the file."""
    if data is None:
        return {}
    where = f"{where}: reference"
    block = _mapping(where, data)
    name = block.get("runner")
    if name not in RUNNERS:
        raise MappingTableError(
            f"{where}: runner '{name}' is not one of {', '.join(sorted(RUNNERS))}"
        )
    entry = RUNNERS[name]
    _known(where, block, COMMON_KEYS | entry.keys)
    if entry.required - set(block):
        raise MappingTableError(f"{where}: runner '{name}' needs {sorted(entry.required)}")
    feeds = _mapping(f"{where}.feeds", block.get("feeds", DEFAULT_FEEDS))
    for model_input, batch_field in feeds.items():
        if batch_field not in BATCH_FIELDS or not isinstance(model_input, str):
            raise MappingTableError(
                f"{where}.feeds: {model_input}: {batch_field} is not one of {BATCH_FIELDS}"
            )
    for head, facts in _mapping(f"{where}.heads", block.get("heads") or {}).items():
        w = f"{where}.heads.{head}"
        if head not in heads:
            raise MappingTableError(f"{w}: the table has no head '{head}'")
        facts = _mapping(w, facts)
        _known(w, facts, HEAD_KEYS | entry.head_keys)
        if facts.get("input_shape", "sequence") not in INPUT_SHAPES:
            raise MappingTableError(f"{w}.input_shape: must be one of {INPUT_SHAPES}")
        outputs = _mapping(f"{w}.outputs", facts.get("outputs") or {})
        if outputs and entry.output_sources is None:
            raise MappingTableError(f"{w}.outputs: runner '{name}' names its outputs itself")
        if entry.output_sources:
            for output, source in outputs.items():
                if source not in entry.output_sources:
                    raise MappingTableError(
                        f"{w}.outputs.{output}: '{source}' is not one of "
                        f"{sorted(entry.output_sources)}"
                    )
    if entry.validate is not None:
        entry.validate(where, block)
    return block


def runner_name(reference: dict[str, Any]) -> str:
    return str(reference.get("runner") or "")


def feeds(reference: dict[str, Any]) -> dict[str, str]:
    return dict(reference.get("feeds") or DEFAULT_FEEDS)


def head_facts(reference: dict[str, Any], head: str) -> HeadFacts:
    facts = dict((reference.get("heads") or {}).get(head) or {})
    return HeadFacts(
        input_shape=str(facts.pop("input_shape", "sequence")),
        outputs=dict(facts.pop("outputs", None) or {}),
        extra=facts,
    )
