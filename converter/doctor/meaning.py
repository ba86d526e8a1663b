"""What a shape mismatch between a checkpoint key and a model parameter means, in the words of
the table's shape spec: the config key whose value differs, the label count, the position offset."""

from __future__ import annotations

from ..errors import UsageError
from ..tables.config_keys import POSITIONS_KEY, target_rule, target_rules
from .target import Target


def mismatch_meaning(key: str, got: tuple[int, ...], want: tuple[int, ...], target: Target) -> str:
    labels = len(target.config.get("id2label") or {}) or target.config.get("num_labels")
    if target.is_head(key) and got[1:] == want[1:] and want[:1] == (labels,):
        return (
            f"{key.rsplit('.', 1)[0]}: checkpoint has {got[0]} labels, model has {want[0]} — "
            f"pass --num-labels {got[0]} or re-initialise the head with --drop-head"
        )
    differing = _differing_key(key, got, want, str(target.config.get("model_type")))
    if differing is not None:
        config_key, offset = differing
        if offset and config_key == POSITIONS_KEY:
            return _position_meaning(got[0], want[0], offset)
        size = got[[d for d in range(len(got)) if got[d] != want[d]][0]]
        return (
            f"{config_key} differs: the checkpoint's {list(got)} needs {config_key}={size}, "
            f"the model has {list(want)} — use the checkpoint's config or pass --set "
            f"{config_key}={size}"
        )
    if tuple(reversed(got)) == want and got != want:
        return f"stored transposed ({list(got)}): a TF/Keras kernel saved without its transpose"
    return f"checkpoint {list(got)} vs model {list(want)}"


def _differing_key(
    key: str, got: tuple[int, ...], want: tuple[int, ...], arch: str
) -> tuple[str, int] | None:
    """(the config key whose value explains the mismatch, its table's position offset), when
    exactly one axis differs and the table's shape spec names it."""
    try:
        hit = target_rule(key, target_rules(arch))
    except UsageError:  # a model type no table serves
        return None
    if hit is None or not (len(got) == len(want) == len(hit[0].spec)):
        return None
    spec = hit[0].spec
    axes = [d for d in range(len(got)) if got[d] != want[d]]
    if len(axes) != 1 or not isinstance(spec[axes[0]], str):
        return None
    return str(spec[axes[0]]), hit[0].position_offset


def _position_meaning(got: int, want: int, offset: int) -> str:
    def rows(n: int) -> str:
        return f"{n} rows = {n - offset} positions + {offset} offset rows"

    return (
        f"position table differs: checkpoint has {rows(got)}, model {rows(want)} (position ids "
        f"start at pad_token_id + 1) — the checkpoint takes inputs of up to {got - offset} "
        f"tokens; pass --set {POSITIONS_KEY}={got} or use the checkpoint's config"
    )
