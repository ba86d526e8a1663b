"""Why a PyTorch checkpoint does (not) load into a transformers model, key by key.

Every checkpoint key ends in one bucket — loads as is, loads after declared repairs, shape
mismatch (with what it means), or unexpected — and every model key is produced, tied, explicitly
re-initialised (`--drop-head`) or missing (would stay random). The repairs are data
(mappings/doctor/repairs.yaml); this module only searches them, fewest first.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

from ..errors import MappingTableError
from ..mapping import load_table, table_names, tables_dir
from ..ops import Op, OpShapeError, chain_shape
from ..tables.schema import load_yaml
from ..tables.schemas import REPAIRS
from .checkpoint import Checkpoint
from .target import Target

MAX_REPAIRS_PER_KEY = 3
REPAIR_KINDS = {"strip_prefix", "add_prefix", "rename_suffix", "tf_table"}

CLEAN = "loads cleanly"
REPAIRED = "loads after repair"
ASSUMED = "loads after repair, with an assumed config"
LOSSY = "cannot load without losing weights"


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
    infer_config: dict[str, Any]
    trainers: tuple[dict[str, Any], ...]  # training checkpoints named by a marker key
    unseen_config: dict[str, Any]  # keys no weight shows: family default, --set or a guess
    written_config: tuple[str, ...]  # keys --fix always writes to config.json


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
        dict(data.get("infer_config") or {}),
        tuple(data.get("trainers") or ()),
        dict(data.get("unseen_config") or {}),
        tuple(data.get("written_config") or ()),
    )


def _table_rules(target: Target, book: RepairBook) -> dict[str, list]:
    """Per tf_table repair: (src pattern, dst pattern, ops) from the conversion tables of the
    target's architecture in that repair's layouts."""
    model_type = str(target.config.get("model_type"))
    tables = [load_table(name) for name in table_names()]
    rules: dict[str, list] = {}
    for repair in book.repairs:
        if repair.kind == "tf_table":
            rules[repair.name] = [
                (r.src, r.dst, r.ops)
                for t in tables
                if t.serves(model_type) and t.layout in repair.layouts
                for g in t.groups.values()
                for r in g.rules
            ]
    return rules


def synthesized_by_tables(target: Target, layouts: set[str]) -> dict[str, tuple[str, str]]:
    """Model key → (fill, reason) for what a layout's tables declare has no source tensor
    (fairseq RoBERTa has no token-type table and no pooler)."""
    model_type = str(target.config.get("model_type"))
    found: dict[str, tuple[str, str]] = {}
    for name in table_names():
        table = load_table(name)
        if table.serves(model_type) and table.layout in layouts:
            for group in table.groups.values():
                for s in group.synthesize:
                    for key in (s.dst.text, s.dst.text.removeprefix(target.base_prefix + ".")):
                        found.setdefault(key, (s.fill, s.reason))
    return found


def _apply(repair: Repair, key: str, base: str, tf_rules) -> tuple[str, tuple[Op, ...]] | None:
    prefix = repair.prefix.replace("{base}", base)
    if repair.kind == "strip_prefix":
        return (key.removeprefix(prefix), ()) if key.startswith(prefix) else None
    if repair.kind == "add_prefix":
        return (prefix + key, ()) if not key.startswith(prefix) else None
    if repair.kind == "rename_suffix":
        return (key.removesuffix(repair.old) + repair.new, ()) if key.endswith(repair.old) else None
    for pattern, replacement in repair.normalise:  # tf_table
        key = re.sub(pattern, replacement, key)
    for src, dst, ops in tf_rules[repair.name]:
        values = src.match(key)
        if values is not None:
            return dst.fill(values), ops
    return None


@dataclass
class KeyFate:
    key: str  # checkpoint key
    shape: list[int]
    fate: str  # as-is | repaired | tied | ignored | mismatched | unexpected | dropped
    target: str = ""
    repairs: list[str] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)
    meaning: str = ""


@dataclass
class Diagnosis:
    checkpoint: str
    class_name: str
    keys: list[KeyFate]
    missing: list[str]  # model keys nothing fills (would be randomly initialised)
    reinitialised: list[str]  # model keys --drop-head fills with fresh random values
    synthesized: dict[str, tuple[str, str]]  # model key → (fill, why) from the layout's table
    tied: list[str]
    repairs_used: dict[str, str]  # repair name → reason
    notes: list[str]
    choices: dict[str, Any]  # the explicit flags, recorded
    ops: dict[str, tuple[Op, ...]] = field(default_factory=dict, repr=False)
    missing_head_only: bool = False  # every missing key belongs to the task head
    assumed: dict[str, str] = field(default_factory=dict)  # key → "key=value (how guessed)"
    family: dict[str, Any] = field(default_factory=dict)  # values from the family defaults
    config_built: bool = False  # the config was built by the doctor, not read from a file

    @property
    def lossy(self) -> bool:
        fates = Counter(k.fate for k in self.keys)
        return bool(fates["mismatched"] or fates["unexpected"] or self.missing)

    @property
    def verdict(self) -> str:
        """One of the four verdicts; a guessed config value is never a clean one, and values
        taken from the family defaults are named too."""
        if self.lossy:
            return LOSSY
        fates = Counter(k.fate for k in self.keys)
        changes = fates["repaired"] + fates["ignored"] + fates["dropped"]
        changes += len(self.reinitialised) + len(self.synthesized)
        if self.assumed:
            verdict = f"{ASSUMED} ({', '.join(self.assumed.values())})"
        elif changes or self.choices or self.config_built:
            verdict = REPAIRED
        else:
            verdict = CLEAN
        if self.family:
            values = ", ".join(f"{k}={v}" for k, v in self.family.items())
            verdict += f"; family defaults: {values}"
        return verdict

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "class": self.class_name,
            "verdict": self.verdict,
            "counts": dict(Counter(k.fate for k in self.keys)),
            "keys": [asdict(k) for k in self.keys],
            "missing": self.missing,
            "missing_by_layer": missing_by_layer(self.missing),
            "reinitialised": self.reinitialised,
            "synthesized": self.synthesized,
            "assumed": self.assumed,
            "family_defaults": self.family,
            "tied": self.tied,
            "repairs_used": self.repairs_used,
            "notes": self.notes,
            "choices": self.choices,
        }


def missing_by_layer(missing: list[str]) -> dict[str, int]:
    """ "encoder layer 3" → how many of its parameters are missing, and so on."""
    groups: Counter[str] = Counter()
    for key in missing:
        m = re.search(r"\.layer\.(\d+)\.", key)
        groups[f"encoder layer {m.group(1)}" if m else key.rsplit(".", 1)[0]] += 1
    return dict(groups)


def _meaning(key: str, got: tuple[int, ...], want: tuple[int, ...], target: Target) -> str:
    labels = len(target.config.get("id2label") or {}) or target.config.get("num_labels")
    if target.is_head(key) and got[1:] == want[1:] and want[:1] == (labels,):
        return (
            f"{key.rsplit('.', 1)[0]}: checkpoint has {got[0]} labels, model has {want[0]} — "
            f"pass --num-labels {got[0]} or re-initialise the head with --drop-head"
        )
    if key.endswith("word_embeddings.weight") and got[1:] == want[1:]:
        return (
            f"vocabulary differs: checkpoint has {got[0]} tokens, model {want[0]} — use the "
            "checkpoint's config (vocab_size) or resize the embeddings before training"
        )
    if key.endswith("position_embeddings.weight") and got[1:] == want[1:]:
        return _position_meaning(got[0], want[0], target)
    if tuple(reversed(got)) == want and got != want:
        return f"stored transposed ({list(got)}): a TF/Keras kernel saved without its transpose"
    return f"checkpoint {list(got)} vs model {list(want)}"


def _position_offset(target: Target) -> int:
    """Rows of the position table before the first real position (RoBERTa: pad_token_id + 1)."""
    model_type = str(target.config.get("model_type"))
    tables = (load_table(name) for name in table_names())
    return next((t.position_offset for t in tables if t.serves(model_type)), 0)


def _position_meaning(got: int, want: int, target: Target) -> str:
    offset = _position_offset(target)

    def rows(n: int) -> str:
        return (
            f"{n} rows = {n - offset} positions + {offset} offset rows" if offset else f"{n} rows"
        )

    why = " (position ids start at pad_token_id + 1)" if offset else ""
    return (
        f"position table differs: checkpoint has {rows(got)}, model {rows(want)}{why} — the "
        f"checkpoint takes inputs of up to {got - offset} tokens; pass --set "
        f"max_position_embeddings={got} or use the checkpoint's config"
    )


def _candidates(key: str, book: RepairBook, base: str, tf_rules):
    """(model key, repairs used, ops), fewest repairs first, in the book's order."""
    for size in range(1, MAX_REPAIRS_PER_KEY + 1):
        for combo in itertools.combinations(book.repairs, size):
            current, ops, ok = key, (), True
            for repair in combo:
                step = _apply(repair, current, base, tf_rules)
                if step is None:
                    ok = False
                    break
                current, ops = step[0], ops + step[1]
            if ok:
                yield current, [r.name for r in combo], ops


def _match(name: str, shape, target: Target, book: RepairBook, tf_rules, taken):
    """(fate, ops): the model key a checkpoint key fills, as is or after the fewest repairs."""
    if name in target.params and name not in taken:
        hit = (name, [], ())
    else:
        candidates = _candidates(name, book, target.base_prefix, tf_rules)
        hit = next((c for c in candidates if c[0] in target.params and c[0] not in taken), None)
    if hit is None:
        return KeyFate(name, list(shape), "unexpected"), ()
    dst, repairs, key_ops = hit
    fate = KeyFate(name, list(shape), "repaired" if repairs else "as-is", dst, repairs)
    fate.ops = [o.describe() for o in key_ops]
    try:
        got = chain_shape(key_ops, tuple(shape))
    except OpShapeError:
        got = tuple(shape)
    want = target.params[dst]
    if got != want:
        fate.fate, fate.meaning = "mismatched", _meaning(dst, got, want, target)
    elif dst in target.tied:
        fate.fate = "tied"
        fate.meaning = f"tied to {target.tied[dst]}: the model keeps that tensor's values"
    return fate, key_ops


def _droppable(name: str, target: Target, book: RepairBook) -> str:
    """Why --drop-head may discard this unplaceable key ("" if it may not)."""
    if any(p.search(name) for p in book.drop_with_head):
        return f"{target.class_name} has no such module (--drop-head)"
    if target.has_head and f"{target.base_prefix}." not in name:
        return "a head parameter the model does not have (--drop-head)"
    return ""


def diagnose(
    checkpoint: Checkpoint, target: Target, drop_head: bool, choices: dict[str, Any]
) -> Diagnosis:
    book = load_repairs()
    tf_rules = _table_rules(target, book)
    taken: dict[str, str] = {}  # model key → checkpoint key filling it
    ops: dict[str, tuple[Op, ...]] = {}
    used: dict[str, str] = {}
    fates: list[KeyFate] = []
    # Keys that load as they are claim their model keys first, so a repair never steals one.
    for name in sorted(checkpoint.tensors, key=lambda n: (n not in target.params, n)):
        shape = list(checkpoint.tensors[name].shape)
        ignored = next((i for i in book.ignore if i.pattern.search(name)), None)
        if ignored is not None and name not in target.params:
            fates.append(KeyFate(name, shape, "ignored", meaning=ignored.reason))
            continue
        fate, key_ops = _match(name, shape, target, book, tf_rules, taken)
        if drop_head and fate.fate == "mismatched" and target.is_head(fate.target):
            fate.fate = "dropped"
            fate.meaning = "does not fit the model's head, which is re-initialised (--drop-head)"
        if drop_head and fate.fate == "unexpected" and (why := _droppable(name, target, book)):
            fate.fate, fate.meaning = "dropped", why
        if fate.fate in ("as-is", "repaired", "tied"):
            taken[fate.target] = name
            ops[name] = key_ops
            used |= {r.name: r.reason for r in book.repairs if r.name in fate.repairs}
        fates.append(fate)
    unfilled = [k for k in target.params if k not in taken and k not in target.tied]
    layouts = {lay for r in book.repairs if r.name in used for lay in r.layouts}
    declared = synthesized_by_tables(target, layouts)
    synthesized = {k: declared[k] for k in unfilled if k in declared}
    unfilled = [k for k in unfilled if k not in synthesized]
    reinit = [k for k in unfilled if drop_head and target.is_head(k)]
    missing = [k for k in unfilled if k not in reinit]
    for fate in fates:
        if fate.fate == "unexpected":
            near = difflib.get_close_matches(fate.key, missing, n=1, cutoff=0.5)
            fate.meaning = f"closest missing model key: {near[0]}" if near else ""
    return Diagnosis(
        checkpoint=str(checkpoint.path),
        class_name=target.class_name,
        keys=sorted(fates, key=lambda f: f.key),
        missing=missing,
        reinitialised=reinit,
        synthesized=synthesized,
        tied=sorted(target.tied),
        repairs_used={n: r.replace("{base}", target.base_prefix) for n, r in used.items()},
        notes=checkpoint.notes + target.notes,
        choices=choices,
        ops=ops,
        missing_head_only=bool(missing) and all(target.is_head(k) for k in missing),
        assumed=target.assumed,
        family=dict(target.origin.family),
        config_built=target.origin.inferred,
    )
