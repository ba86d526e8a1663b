"""Every shipped table's every head, expanded to the flat per-tensor rules the planner applies.

The golden file (tables.json) was written by the table loader *before* the table language grew
shorthands and a shared vocabulary; the golden test asserts today's loader still expands every
table to exactly the same rules, so a rewrite of the YAML can only change how tables are written,
never what they say. Add a new table's expansion (written in long form, before shortening it)
with `python -m tests.golden.expand NAME…`; with no names every table is rewritten, which is only
right for an intended change of meaning.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).with_name("tables.json")


def _shape(spec: tuple) -> list:
    return list(spec)


def _source_config(table: Any) -> dict[str, Any]:
    out = {}
    for key, e in sorted(table.source_config.items()):
        out[key] = {
            "key": e.key,
            "tensor": e.tensor.text if e.tensor else None,
            "or_tensor": e.or_tensor.text if e.or_tensor else None,
            "axis": e.axis,
            "count": e.count.text if e.count else None,
            "add": e.add,
            "values": {str(k): v for k, v in e.values.items()},
        }
    return out


def expand_head(table: Any, head: str) -> dict[str, Any]:
    """One head as flat lists, each sorted so that the order groups are written in is free."""
    groups = table.head_groups(head)
    rules = [
        {
            "src": r.src.text,
            "dst": table.target_name(head, r.dst.text),
            "ops": [repr(o) for o in r.ops],
            "shape": _shape(r.shape),
        }
        for g in groups
        for r in g.rules
    ]
    dups = [{"src": d.src.text, "same_as": d.same_as.text} for g in groups for d in g.duplicates]
    ties = [
        {"dst": table.target_name(head, t.dst.text), "same_as": t.same_as.text}
        for g in groups
        for t in g.ties
    ]
    synth = [
        {
            "dst": table.target_name(head, s.dst.text),
            "fill": s.fill,
            "shape": _shape(s.shape),
            "reason": s.reason,
        }
        for g in groups
        for s in g.synthesize
    ]
    h = table.heads[head]
    ignore = getattr(table, "head_ignore", None)
    ignore = ignore(head) if ignore else table.ignore
    sources = getattr(table, "head_source_config", None)
    return {
        "class": table.class_name(head),
        "bare": h.bare,
        "when": h.when,
        "labels_from": h.labels_from,
        "source_class": h.source_class,
        "rules": sorted(rules, key=lambda r: (r["src"], r["dst"])),
        "duplicates": sorted(dups, key=lambda d: d["src"]),
        "ties": sorted(ties, key=lambda t: t["dst"]),
        "synthesize": sorted(synth, key=lambda s: s["dst"]),
        "ignore": [{"pattern": i.pattern.text, "reason": i.reason} for i in ignore],
        "source_config": _source_config(sources(head) if sources else table),
    }


def expand_table(table: Any) -> dict[str, Any]:
    return {
        "placeholders": dict(sorted(table.placeholders.items())),
        "heads": {h: expand_head(table, h) for h in sorted(table.heads)},
    }


def expand_all(names: list[str] | None = None) -> dict[str, Any]:
    from converter.tables import load_table, table_names

    return {n: expand_table(load_table(n)) for n in (names or table_names())}


def main(names: list[str]) -> None:
    golden = json.loads(GOLDEN.read_text()) if names and GOLDEN.exists() else {}
    golden.update(expand_all(names or None))
    GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    print(f"wrote {', '.join(names) or 'every table'} to {GOLDEN}")


if __name__ == "__main__":
    main(sys.argv[1:])
