"""The table language: YAML mapping tables (mappings/*.yaml) loaded, validated, expanded and
compiled into frozen rules; which table converts a source; one validator for every YAML file."""

from .load import (
    FILL_KINDS,
    kinds_of,
    load_table,
    parse_table,
    raw_table,
    table_names,
    tables_dir,
)
from .model import (
    PLACEHOLDER,
    CompiledHead,
    Duplicate,
    Group,
    Head,
    IgnoreRule,
    Pattern,
    Rule,
    ShapeSpec,
    SourceConfigEntry,
    SourceNote,
    Synthesized,
    Table,
    Tie,
)
from .schema import load_yaml, validate
from .select import select_table

__all__ = [
    "FILL_KINDS",
    "PLACEHOLDER",
    "CompiledHead",
    "Duplicate",
    "Group",
    "Head",
    "IgnoreRule",
    "Pattern",
    "Rule",
    "ShapeSpec",
    "SourceConfigEntry",
    "SourceNote",
    "Synthesized",
    "Table",
    "Tie",
    "kinds_of",
    "load_table",
    "load_yaml",
    "parse_table",
    "raw_table",
    "select_table",
    "table_names",
    "tables_dir",
    "validate",
]
