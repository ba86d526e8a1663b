"""mappings/README.md is the complete reference of the table language: every key a schema
accepts, every op, runner and runner key, every layer kind, is documented there, in the section
that describes its file.

The keys are walked from the schemas and registries themselves (converter/tables/schemas.py,
reference.py and the runner specs beside it, ops.py, mappings/shared/kinds.yaml, the doctor's
repair kinds, the tokenizer rules), so a key added to the code without a line in the reference
fails here. "Documented" means written as code in the right section: `` `key` ``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from converter.doctor.repairs import REPAIR_KINDS
from converter.provenance.patches import OPS as PATCH_OPS
from converter.tables import keras_hub_spec, load_table, reference, table_names, tf1_encoder_spec
from converter.tables.config_keys import GUESS_KEYS
from converter.tables.hypotheses import load_hypotheses
from converter.tables.load import FILL_KINDS, kinds_of
from converter.tables.ops import OPS
from converter.tables.schema import ListOf, MapOf, Obj, OneOf
from converter.tables.schemas import (
    FAIRSEQ,
    HYPOTHESES,
    KINDS,
    MODEL_CARD,
    REPAIRS,
    TOKENIZER_FAMILIES,
    VOCABULARY,
    names_schema,
    table_schema,
)
from converter.tokenizers.rules import RULES

README = Path(__file__).resolve().parents[2] / "mappings" / "README.md"
HEADING = re.compile(r"^(#+) (.*)$", re.MULTILINE)


def section(title: str, text: str | None = None) -> str:
    """The text under the heading that starts with `title`, up to the next heading of its level
    or above (so a section holds its subsections)."""
    text = README.read_text() if text is None else text
    headings = list(HEADING.finditer(text))
    for i, heading in enumerate(headings):
        if heading.group(2).startswith(title):
            level = len(heading.group(1))
            end = next(
                (h.start() for h in headings[i + 1 :] if len(h.group(1)) <= level), len(text)
            )
            return text[heading.end() : end]
    raise AssertionError(f"mappings/README.md has no section '{title}'")


def keys_of(spec: Any) -> set[str]:
    """Every key any mapping in the schema `spec` accepts, however deep."""
    if isinstance(spec, Obj):
        found = set(spec.keys)
        for value in spec.keys.values():
            found |= keys_of(value)
        return found
    if isinstance(spec, ListOf):
        return keys_of(spec.item)
    if isinstance(spec, MapOf):
        return keys_of(spec.value)
    if isinstance(spec, OneOf):
        return set().union(*(keys_of(option) for option in spec.options))
    return set()


def undocumented(words: Iterable[str], text: str) -> list[str]:
    return sorted(w for w in set(words) if f"`{w}`" not in text)


KIND_NAMES = tuple(kinds_of().kinds)

# (README section, what must be documented in it, what the words are)
SCHEMAS = [
    ("Table files", keys_of(table_schema(KIND_NAMES)), "table, group, head and rule keys"),
    ("Table files", KIND_NAMES, "layer kinds (shorthand keys of a group)"),
    ("Long-form entries", FILL_KINDS, "synthesize fills"),
    # names-*.yaml's groups are the tables' groups (checked above): here, its own keys.
    ("Shared source names", names_schema(KIND_NAMES).keys, "names-*.yaml keys"),
    ("kinds.yaml", keys_of(KINDS), "kinds.yaml keys"),
    ("kinds.yaml", KIND_NAMES, "layer kinds"),
    ("kinds.yaml", kinds_of().params, "source_params styles"),
    ("Vocabulary", keys_of(VOCABULARY), "vocabulary keys"),
    ("hypotheses.yaml", keys_of(HYPOTHESES), "hypotheses.yaml keys"),
    ("model-card.yaml", keys_of(MODEL_CARD), "model-card.yaml keys"),
    ("Tokenizer families", keys_of(TOKENIZER_FAMILIES), "tokenizer family keys"),
    ("Tokenizer families", RULES, "tokenizer rules"),
    ("Doctor: repairs.yaml", keys_of(REPAIRS), "repairs.yaml keys"),
    ("Doctor: repairs.yaml", REPAIR_KINDS, "repair kinds"),
    ("Doctor: fairseq.yaml", keys_of(FAIRSEQ), "fairseq.yaml keys"),
    ("Ops", OPS, "ops"),
    ("config_guesses and family_defaults", GUESS_KEYS, "config_guesses keys"),
    ("reference", reference.RUNNERS, "runners"),
    ("reference", reference.COMMON_KEYS | reference.HEAD_KEYS, "keys every runner accepts"),
    ("reference", reference.BATCH_FIELDS + reference.INPUT_SHAPES, "feeds and input shapes"),
]


@pytest.mark.parametrize(
    ("title", "words", "what"), SCHEMAS, ids=[f"{s[0]}: {s[2]}" for s in SCHEMAS]
)
def test_every_key_is_documented_in_its_section(title, words, what):
    missing = undocumented(words, section(title))
    assert not missing, f"mappings/README.md, section '{title}', lacks {what}: {missing}"


@pytest.mark.parametrize("runner", sorted(reference.RUNNERS))
def test_every_runner_has_its_section_with_its_own_keys(runner):
    entry = reference.RUNNERS[runner]
    words = set(entry.keys) | set(entry.head_keys) | set(entry.output_sources or ())
    if runner == "tf1-encoder":
        spec = tf1_encoder_spec
        words |= set(spec.ACTIVATIONS) | set(spec.ROLES) | spec.EMBEDDING_KEYS | spec.ENCODER_KEYS
        words |= spec.WORD_STEPS | spec.NAMED_STEPS | {spec.CONFIG_ACTIVATION}
    if runner == "keras-hub":
        words |= keras_hub_spec.AS_TARGET_KEYS
    missing = undocumented(words, section(f"`{runner}`", section("reference")))
    assert not missing, f"mappings/README.md, runner '{runner}', lacks its keys {missing}"


def test_every_shipped_layout_is_named():
    tables = [load_table(name) for name in table_names()]
    text = section("Table files")
    missing = undocumented({t.layout for t in tables}, text)
    assert not missing, f"mappings/README.md, 'Table files', lacks layouts {missing}"


def test_every_hypothesis_op_patch_op_and_config_key_is_named():
    hypotheses = load_hypotheses()
    words = set(hypotheses.ops) | set(PATCH_OPS) | {h.key for h in hypotheses.config}
    missing = undocumented(words, section("hypotheses.yaml"))
    assert not missing, f"mappings/README.md, 'hypotheses.yaml', lacks {missing}"


def test_the_check_finds_an_undocumented_key():
    """The check itself can fail: a reference without one key is caught."""
    text = section("Doctor: fairseq.yaml")
    assert undocumented(keys_of(FAIRSEQ), text) == []
    assert undocumented(keys_of(FAIRSEQ), text.replace("`model_args_entry`", "")) == [
        "model_args_entry"
    ]
