"""The schema of every YAML file tf2pt reads, as data for the one validator (schema.py)."""

from __future__ import annotations

from functools import cache

from .schema import ANY, SCALAR, ListOf, MapOf, Obj, OneOf

NAME = str
SHAPE = ListOf(OneOf((int, str), "an integer or a config key"))
OPS = ListOf(OneOf((str, MapOf(ANY)), "an op name or a one-key mapping"))

RULE = Obj(
    {"src": NAME, "dst": NAME, "ops": OPS, "shape": SHAPE, "note": str},
    frozenset({"src", "dst", "shape"}),
)
DUPLICATE = Obj({"src": NAME, "same_as": NAME, "note": str}, frozenset({"src", "same_as"}))
TIE = Obj({"dst": NAME, "same_as": NAME, "note": str}, frozenset({"dst", "same_as"}))
SYNTHESIZE = Obj(
    {"dst": NAME, "fill": str, "shape": SHAPE, "reason": str},
    frozenset({"dst", "fill", "shape", "reason"}),
)
IGNORE = Obj({"pattern": NAME, "reason": str}, frozenset({"pattern", "reason"}))

# A shorthand entry: `role: source stem` (the role's PyTorch name and shape are in the
# vocabulary), or a list of {src, dst, shape} stems for names the vocabulary does not hold.
SHORTHAND = OneOf(
    (
        MapOf(str),
        ListOf(
            Obj({"src": NAME, "dst": NAME, "shape": SHAPE, "note": str}, frozenset({"src", "dst"}))
        ),
    ),
    "a mapping of role: source name, or a list of {src, dst, shape}",
)


def _source_config_check(entry: dict) -> str | None:
    if not ({"key", "tensor", "count"} & set(entry)):
        return "needs at least one of key, tensor, count"
    if "tensor" in entry and not isinstance(entry.get("axis"), int):
        return "a tensor entry needs an integer axis"
    return None


SOURCE_CONFIG = Obj(
    {
        "key": str,
        "tensor": NAME,
        "or_tensor": NAME,
        "divide": int,
        "axis": int,
        "count": NAME,
        "add": int,
        "values": MapOf(ANY, key=ANY),
        "note": str,
        # Why the value the source gives is translated (values, add) or guessed (divide):
        # the reason every conversion states next to the value it assumed.
        "why": str,
        "required": bool,  # refused when neither config nor weights hold it (`note` says why)
    },
    check=_source_config_check,
)
# A config default: the value, or the value with why it is the producer's (said in the reports).
EXPLAINED = Obj({"value": SCALAR, "why": str}, frozenset({"value", "why"}))
CONFIG_DEFAULT = OneOf(
    (str, int, float, bool, type(None), EXPLAINED), "a number, string, bool, null or {value, why}"
)
SOURCE_NOTE = Obj({"key": str, "unless": ListOf(SCALAR), "note": str}, frozenset({"key", "note"}))
HEAD = Obj(
    {
        "class": str,
        "groups": ListOf(str),
        "when": MapOf(SCALAR),
        "labels_from": str,
        "bare": bool,
        "description": str,
        "source_class": str,
        "ignore": ListOf(IGNORE),
        "source_config": MapOf(SOURCE_CONFIG),
        "default": bool,
    },
    frozenset({"class", "groups"}),
)


def group_schema(kinds: tuple[str, ...]) -> Obj:
    """A group: long-form lists, plus one shorthand key per kind (mappings/shared/kinds.yaml)."""
    keys = {
        "rules": ListOf(RULE),
        "duplicates": ListOf(DUPLICATE),
        "ties": ListOf(TIE),
        "synthesize": ListOf(SYNTHESIZE),
        "src_prefix": str,  # prepended to every shorthand source name of the group
        "dst_prefix": str,  # … and target name of its layers outside the vocabulary
        "when_differ": ListOf(str),  # config keys that must differ for the group to exist
    }
    return Obj({**keys, **{k: SHORTHAND for k in kinds}})


@cache
def table_schema(kinds: tuple[str, ...]) -> Obj:
    group = OneOf((group_schema(kinds), type(None)), "a group (a mapping) or nothing")
    return Obj(
        {
            "schema": int,
            "extends": str,
            "include": ListOf(str),
            "vocabulary": str,
            "source_params": str,
            "source_scope": str,
            "description": str,
            "architecture": str,
            "layout": str,
            "model_type": str,
            "model_types": ListOf(str),
            "class_prefix": str,
            "base_model_prefix": str,
            "placeholders": MapOf(str),
            "config_defaults": MapOf(CONFIG_DEFAULT),
            "family_defaults": MapOf(OneOf((int, float, str, bool), "a number, string or bool")),
            "position_offset": int,
            "keep_source_config": bool,
            "source_config": MapOf(SOURCE_CONFIG),
            "source_notes": ListOf(SOURCE_NOTE),
            "groups": MapOf(group),
            "heads": MapOf(HEAD),
            "ignore": ListOf(IGNORE),
            "reference": MapOf(ANY),  # the verify side validates its contents
            # How a config-less checkpoint's unseen values are guessed (read by the doctor)
            "config_guesses": MapOf(MapOf(ANY)),
            "requires_config": str,  # the producer's config file; refused without it
            "head_count_key": str,  # the config key holding the attention head count
        },
    )


@cache
def names_schema(kinds: tuple[str, ...]) -> Obj:
    """mappings/shared/names-*.yaml: source names of shared groups, for tables to `include:`."""
    return Obj(
        {"schema": int, "description": str, "groups": MapOf(group_schema(kinds))},
        frozenset({"schema", "groups"}),
    )


VOCABULARY = Obj(
    {
        "schema": int,
        "description": str,
        "roles": MapOf(Obj({"dst": NAME, "shape": SHAPE}, frozenset({"dst", "shape"}))),
    },
    frozenset({"schema", "roles"}),
)

KIND_PART = Obj(
    {
        "src": OneOf((str, type(None)), "a parameter name or null"),
        "dst": str,
        "ops": OPS,
        "shape": str,
    },
    frozenset({"dst", "shape"}),
)
KINDS = Obj(
    {
        "schema": int,
        "params": MapOf(MapOf(str)),
        "kinds": MapOf(ListOf(KIND_PART)),
    },
    frozenset({"schema", "params", "kinds"}),
)

REPAIRS = Obj(
    {
        "schema": int,
        "repairs": ListOf(
            Obj(
                {
                    "name": str,
                    "kind": str,
                    "reason": str,
                    "prefix": str,
                    "from": str,
                    "to": str,
                    "layouts": ListOf(str),
                    "normalise": ListOf(OneOf((str, MapOf(str)), "a regex or {regex: text}")),
                },
                frozenset({"name", "kind", "reason"}),
            )
        ),
        "ignore": ListOf(IGNORE),
        "drop_with_head": ListOf(str),
        "containers": ListOf(str),
        "trainers": ListOf(
            Obj({"marker": str, "name": str, "facts": ListOf(str)}, frozenset({"marker", "name"}))
        ),
    },
    frozenset({"schema", "repairs"}),
)


def _fairseq_config_check(entry: dict) -> str | None:
    return None if {"arg", "tensor"} & set(entry) else "needs arg or tensor"


FAIRSEQ = Obj(
    {
        "schema": int,
        "safe_globals": ListOf(str),
        "weights": str,
        "config_keys": ListOf(str),
        "model_args_entry": str,
        "split": ListOf(Obj({"suffix": str, "into": ListOf(str)}, frozenset({"suffix", "into"}))),
        "config": MapOf(
            Obj(
                {"arg": str, "tensor": str, "axis": int, "add": int, "values": MapOf(ANY)},
                check=_fairseq_config_check,
            )
        ),
        "fixed": MapOf(SCALAR),
        "must_be": ListOf(
            Obj({"arg": str, "value": ANY, "reason": str}, frozenset({"arg", "value", "reason"}))
        ),
        "dictionary": Obj(
            {
                "file": str,
                "specials": ListOf(str),
                "ids": MapOf(str),
                "padding": str,
                "last": str,
            },
            frozenset({"file", "specials", "ids"}),
        ),
    },
    frozenset({"schema", "weights", "config_keys", "config", "fixed", "dictionary"}),
)


def _family_check(entry: dict) -> str | None:
    specials = entry.get("specials") or {}
    if not {"cls_token", "sep_token", "unk_token"} <= set(specials):
        return "specials need at least cls_token, sep_token and unk_token"
    missing = [role for role in entry.get("lstrip") or () if role not in specials]
    return f"lstrip names roles without a token: {', '.join(missing)}" if missing else None


TOKENIZER_FAMILIES = Obj(
    {
        "schema": int,
        "families": MapOf(
            Obj(
                {
                    "model": str,
                    "tokenizer_class": str,
                    "slow_files": ListOf(str),
                    "specials": MapOf(str),
                    "template": Obj({"single": str, "pair": str}, frozenset({"single", "pair"})),
                    "config": MapOf(ANY),
                    "lstrip": ListOf(str),
                    "class_models": ListOf(str),
                    "vocabulary": Obj(
                        {"head": ListOf(str), "pieces_from": int, "tail": ListOf(str)},
                        frozenset({"head", "pieces_from"}),
                    ),
                },
                frozenset({"model", "tokenizer_class", "slow_files", "specials", "template"}),
                check=_family_check,
            )
        ),
        "keras_hub": MapOf(
            Obj(
                {
                    "family": str,
                    "assets": MapOf(str),
                    "rules": str,
                    "settings": MapOf(
                        Obj({"option": str, "default": SCALAR}, frozenset({"option", "default"}))
                    ),
                    "preprocessor": str,
                },
                frozenset({"family", "assets", "rules", "preprocessor"}),
            )
        ),
        "releases": ListOf(
            Obj(
                {
                    "name": str,
                    "files": MapOf(str),
                    "family": OneOf((str, ListOf(str)), "a family or a list of families"),
                    "rules": str,
                },
                frozenset({"name", "files", "family", "rules"}),
            )
        ),
        "parity_ids": Obj({"bos": int, "eos": int}, frozenset({"bos", "eos"})),
    },
    frozenset({"schema", "families", "keras_hub", "releases", "parity_ids"}),
)


def _weight_change_check(entry: dict) -> str | None:
    if ("tensors" in entry) == ("pairs" in entry):
        return "needs exactly one of tensors, pairs"
    return None


WEIGHT_CHANGE = Obj(
    {
        "op": str,
        "tensors": ListOf(str),  # role or role.part
        "pairs": ListOf(ListOf(str)),  # two roles exchanged
        "parts": ListOf(str),  # each role's tensors: role.part for each part
        "says": str,
    },
    frozenset({"op", "says"}),
    check=_weight_change_check,
)
HYPOTHESES = Obj(
    {
        "schema": int,
        "description": str,
        "config": ListOf(
            Obj(
                {
                    "key": str,
                    "values": ListOf(SCALAR),
                    "same": ListOf(ListOf(SCALAR)),
                    "meaning": MapOf(str),
                    "only_with": str,  # a table key that must be set (nonzero)
                    "says": str,
                },
                frozenset({"key", "values", "says"}),
            )
        ),
        "inputs": ListOf(Obj({"drop": str, "says": str}, frozenset({"drop", "says"}))),
        "weights": Obj(
            {
                "layer": ListOf(WEIGHT_CHANGE),
                "head": ListOf(WEIGHT_CHANGE),
                "embeddings": ListOf(WEIGHT_CHANGE),
            }
        ),
        "ops": MapOf(Obj({"does": str, "command": str, "per": int}, frozenset({"does"}))),
        "commands": Obj({"config": str}, frozenset({"config"})),
        "words": MapOf(str),
        "families": MapOf(Obj({"config_keys": MapOf(str), "heads_key": str, "roles": MapOf(str)})),
    },
    frozenset({"schema", "config", "weights", "ops", "commands"}),
)


# mappings/shared/model-card.yaml: the model card's hub tags for heads and source layouts
MODEL_CARD = Obj(
    {
        "schema": int,
        "description": str,
        "pipeline_tags": MapOf(str),
        "layout_tags": MapOf(str),
    },
    frozenset({"schema", "pipeline_tags", "layout_tags"}),
)
