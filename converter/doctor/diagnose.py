"""Why a PyTorch checkpoint does (not) load into a transformers model, key by key.

Every checkpoint key ends in one bucket — loads as is, loads after declared repairs, shape
mismatch (with what it means), or unexpected — and every model key is produced, tied, explicitly
re-initialised (`--drop-head`) or missing (would stay random). The repairs are data
(mappings/doctor/repairs.yaml); this module only searches them, fewest first.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import UsageError
from ..plan.fates import SourceFate, TargetFate
from ..tables import load_table, table_names
from ..tables.config_keys import layer_of, target_rules
from ..tables.ops import Op, OpShapeError, chain_shape
from .checkpoint import Checkpoint
from .meaning import mismatch_meaning
from .repairs import RepairBook, candidates, load_repairs, table_rules
from .target import Target

CLEAN = "loads cleanly"
REPAIRED = "loads after repair"
ASSUMED = "loads after repair, with an assumed config"
LOSSY = "cannot load without losing weights"


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


@dataclass
class KeyFate:
    key: str  # checkpoint key
    shape: list[int]
    fate: SourceFate  # as-is, repaired, tied, ignored, mismatched, unexpected or dropped
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
    missing_by_layer: dict[str, int] = field(default_factory=dict)  # block → missing count
    missing_head_only: bool = False  # every missing key belongs to the task head
    assumed: dict[str, str] = field(default_factory=dict)  # key → "key=value (how guessed)"
    family: dict[str, Any] = field(default_factory=dict)  # values from the family defaults
    config_built: bool = False  # the config was built by the doctor, not read from a file

    @property
    def lossy(self) -> bool:
        return any(k.fate.lost for k in self.keys) or bool(self.missing)

    @property
    def verdict(self) -> str:
        """One of the four verdicts; a guessed config value is never a clean one, and values
        taken from the family defaults are named too."""
        if self.lossy:
            return LOSSY
        changes = sum(k.fate.changed for k in self.keys)
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
            TargetFate.MISSING: self.missing,
            "missing_by_layer": self.missing_by_layer,
            TargetFate.REINITIALISED: self.reinitialised,
            TargetFate.SYNTHESIZED: self.synthesized,
            "assumed": self.assumed,
            "family_defaults": self.family,
            TargetFate.TIED: self.tied,
            "repairs_used": self.repairs_used,
            "notes": self.notes,
            "choices": self.choices,
        }


def missing_by_layer(missing: list[str], arch: str) -> dict[str, int]:
    """ "encoder.layer.3" → how many of its parameters are missing (the block a key's table rule
    repeats, by its layer placeholders), and the module, outside any block."""
    try:
        rules = target_rules(arch)
    except UsageError:  # a model type no table serves
        rules = ()
    groups: Counter[str] = Counter()
    for key in missing:
        groups[layer_of(key, rules) or key.rsplit(".", 1)[0]] += 1
    return dict(groups)


def _match(name: str, shape, target: Target, book: RepairBook, tf_rules, taken):
    """(fate, ops): the model key a checkpoint key fills, as is or after the fewest repairs."""
    if name in target.params and name not in taken:
        hit = (name, [], ())
    else:
        found = candidates(name, book, target.base_prefix, tf_rules)
        hit = next((c for c in found if c[0] in target.params and c[0] not in taken), None)
    if hit is None:
        return KeyFate(name, list(shape), SourceFate.UNEXPECTED), ()
    dst, repairs, key_ops = hit
    fate = KeyFate(
        name, list(shape), SourceFate.REPAIRED if repairs else SourceFate.AS_IS, dst, repairs
    )
    fate.ops = [o.describe() for o in key_ops]
    try:
        got = chain_shape(key_ops, tuple(shape))
    except OpShapeError:
        got = tuple(shape)
    want = target.params[dst]
    if got != want:
        fate.fate, fate.meaning = SourceFate.MISMATCHED, mismatch_meaning(dst, got, want, target)
    elif dst in target.tied:
        fate.fate = SourceFate.TIED
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
    tf_rules = table_rules(str(target.config.get("model_type")), book)
    taken: dict[str, str] = {}  # model key → checkpoint key filling it
    ops: dict[str, tuple[Op, ...]] = {}
    used: dict[str, str] = {}
    fates: list[KeyFate] = []
    # Keys that load as they are claim their model keys first, so a repair never steals one.
    for name in sorted(checkpoint.tensors, key=lambda n: (n not in target.params, n)):
        shape = list(checkpoint.tensors[name].shape)
        ignored = next((i for i in book.ignore if i.pattern.search(name)), None)
        if ignored is not None and name not in target.params:
            fates.append(KeyFate(name, shape, SourceFate.IGNORED, meaning=ignored.reason))
            continue
        fate, key_ops = _match(name, shape, target, book, tf_rules, taken)
        if drop_head and fate.fate is SourceFate.MISMATCHED and target.is_head(fate.target):
            fate.fate = SourceFate.DROPPED
            fate.meaning = "does not fit the model's head, which is re-initialised (--drop-head)"
        unplaced = fate.fate is SourceFate.UNEXPECTED
        if drop_head and unplaced and (why := _droppable(name, target, book)):
            fate.fate, fate.meaning = SourceFate.DROPPED, why
        if fate.fate.loads:
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
        if fate.fate is SourceFate.UNEXPECTED:
            near = difflib.get_close_matches(fate.key, missing, n=1, cutoff=0.5)
            fate.meaning = f"closest missing model key: {near[0]}" if near else ""
    return Diagnosis(
        checkpoint=str(checkpoint.path),
        class_name=target.class_name,
        keys=sorted(fates, key=lambda f: f.key),
        missing=missing,
        missing_by_layer=missing_by_layer(missing, str(target.config.get("model_type"))),
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
