"""The doctor's repair book (mappings/doctor/repairs.yaml): the known ways a checkpoint's keys
differ from a transformers model's, each kind a small function, searched fewest repairs first."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..errors import MappingTableError
from ..tables import Pattern, load_table, table_names, tables_dir
from ..tables.ops import Op
from ..tables.schema import load_yaml
from ..tables.schemas import REPAIRS

MAX_REPAIRS_PER_KEY = 3

Step = tuple[str, tuple[Op, ...]]  # the candidate key and the ops its tensor needs
TableRules = dict[str, list[tuple[Pattern, Pattern, tuple[Op, ...]]]]  # tf_table repair → rules


@dataclass(frozen=True)
class Repair:
    name: str
    kind: str
    reason: str
    prefix: str = ""
    old: str = ""
    new: str = ""
    # (regex, replacement) applied to a key before a table matches it
    normalise: tuple[tuple[str, str], ...] = ()
    layouts: tuple[str, ...] = ()  # the source layouts whose tables a tf_table repair uses


@dataclass(frozen=True)
class Ignore:
    pattern: re.Pattern
    reason: str


@dataclass(frozen=True)
class RepairBook:
    repairs: tuple[Repair, ...]
    ignore: tuple[Ignore, ...]
    drop_with_head: tuple[re.Pattern, ...]
    containers: tuple[str, ...]
    trainers: tuple[dict[str, Any], ...]  # training checkpoints named by a marker key


def _normalise(where: str, items: Any) -> tuple[tuple[str, str], ...]:
    """Each item is a regex to delete, or {regex: replacement}."""
    pairs = []
    for item in items or ():
        entries = item.items() if isinstance(item, dict) else [(item, "")]
        for pattern, replacement in entries:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as exc:
                bad = f"{where}: bad normalise regex {pattern!r} ({exc})"
                raise MappingTableError(bad) from None
            pairs.append((str(pattern), str(replacement)))
    return tuple(pairs)


@cache
def load_repairs() -> RepairBook:
    path = tables_dir() / "doctor" / "repairs.yaml"
    data = load_yaml(path, REPAIRS)
    repairs = []
    for i, r in enumerate(data.get("repairs") or []):
        if r.get("kind") not in REPAIR_KINDS or not r.get("name") or not r.get("reason"):
            raise MappingTableError(f"{path}: repairs[{i}] needs name, reason and a known kind")
        repairs.append(
            Repair(
                r["name"],
                r["kind"],
                r["reason"],
                r.get("prefix", ""),
                r.get("from", ""),
                r.get("to", ""),
                _normalise(f"{path}: repairs[{i}]", r.get("normalise")),
                tuple(r.get("layouts") or ()),
            )
        )
    try:
        ignore = tuple(
            Ignore(re.compile(i["pattern"]), i["reason"]) for i in data.get("ignore") or []
        )
        droppable = tuple(re.compile(p) for p in data.get("drop_with_head") or [])
    except (KeyError, TypeError, re.error) as exc:
        raise MappingTableError(f"{path}: bad ignore or drop_with_head entry ({exc})") from None
    return RepairBook(
        tuple(repairs),
        ignore,
        droppable,
        tuple(data.get("containers") or ()),
        tuple(data.get("trainers") or ()),
    )


def table_rules(model_type: str, book: RepairBook) -> TableRules:
    """Per tf_table repair: (src pattern, dst pattern, ops) from the conversion tables of the
    target's architecture in that repair's layouts."""
    tables = [load_table(name) for name in table_names()]
    known = {t.layout for t in tables}
    rules: dict[str, list] = {}
    for repair in book.repairs:
        unknown = sorted(set(repair.layouts) - known)
        if unknown:  # a misspelt layout would silently leave its names unrepaired
            raise MappingTableError(
                f"mappings/doctor/repairs.yaml: repair {repair.name} names unknown layout(s) "
                f"{unknown}; the tables' layouts are {sorted(known)}"
            )
        if repair.kind == "tf_table":
            rules[repair.name] = [
                (r.src, r.dst, r.ops)
                for t in tables
                if t.serves(model_type) and t.layout in repair.layouts
                for g in t.groups.values()
                for r in g.rules
            ]
    return rules


def _strip_prefix(repair: Repair, key: str, base: str, _) -> Step | None:
    prefix = repair.prefix.replace("{base}", base)
    return (key.removeprefix(prefix), ()) if key.startswith(prefix) else None


def _add_prefix(repair: Repair, key: str, base: str, _) -> Step | None:
    prefix = repair.prefix.replace("{base}", base)
    return (prefix + key, ()) if not key.startswith(prefix) else None


def _rename_suffix(repair: Repair, key: str, _base: str, _) -> Step | None:
    return (key.removesuffix(repair.old) + repair.new, ()) if key.endswith(repair.old) else None


def _tf_table(repair: Repair, key: str, _base: str, tf_rules: TableRules) -> Step | None:
    for pattern, replacement in repair.normalise:
        key = re.sub(pattern, replacement, key)
    for src, dst, ops in tf_rules[repair.name]:
        values = src.match(key)
        if values is not None:
            return dst.fill(values), ops
    return None


# Each kind of repair turns one key into a candidate model key (with the ops it needs), or None.
APPLY = {
    "strip_prefix": _strip_prefix,
    "add_prefix": _add_prefix,
    "rename_suffix": _rename_suffix,
    "tf_table": _tf_table,
}
REPAIR_KINDS = set(APPLY)


def candidates(key: str, book: RepairBook, base: str, tf_rules: TableRules):
    """(model key, repairs used, ops), fewest repairs first, in the book's order."""
    for size in range(1, MAX_REPAIRS_PER_KEY + 1):
        for combo in itertools.combinations(book.repairs, size):
            current, ops, ok = key, (), True
            for repair in combo:
                step = APPLY[repair.kind](repair, current, base, tf_rules)
                if step is None:
                    ok = False
                    break
                current, ops = step[0], ops + step[1]
            if ok:
                yield current, [r.name for r in combo], ops
