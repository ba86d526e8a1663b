"""The YAML tables say exactly what they said before shorthands and the shared vocabulary:
each head of each table expands to the golden per-tensor rules (tests/golden/tables.json)."""

from __future__ import annotations

import difflib
import json

import pytest

from converter.tables import parse_table, raw_table, tables_dir
from tests.golden.expand import GOLDEN, expand_all, expand_table

GOLDEN_TABLES = json.loads(GOLDEN.read_text())


def _lines(expanded: dict) -> list[str]:
    return json.dumps(expanded, indent=1, sort_keys=True).splitlines()


@pytest.mark.parametrize("name", sorted(GOLDEN_TABLES))
def test_table_expands_to_its_golden_rules(name):
    got = expand_all([name])[name]
    diff = difflib.unified_diff(_lines(GOLDEN_TABLES[name]), _lines(got), "golden", name, n=2)
    assert got == GOLDEN_TABLES[name], "\n".join(list(diff)[:60])


def test_a_one_character_change_to_a_table_breaks_the_golden_match(tmp_path):
    """The golden comparison can fail: `gamma` → `gammb` in one source name is caught."""
    for path in tables_dir().glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "shared").mkdir()
    for path in (tables_dir() / "shared").glob("*.yaml"):
        (tmp_path / "shared" / path.name).write_text(path.read_text())
    text = (tmp_path / "bert-tf1.yaml").read_text()
    assert "LayerNorm/gamma" in text or "LayerNorm" in text
    changed = text.replace("LayerNorm", "LayerNorn", 1)
    (tmp_path / "bert-tf1.yaml").write_text(changed)
    table = parse_table("bert-tf1", raw_table("bert-tf1", tmp_path), tmp_path)
    assert expand_table(table) != GOLDEN_TABLES["bert-tf1"]
