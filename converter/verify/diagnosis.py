"""Why parity failed: the known causes (mappings/shared/hypotheses.yaml) tried on the converted
model, each judged by the very gate the conversion failed.

The TF outputs are already computed and a PyTorch forward pass is cheap, so each hypothesis
becomes a concrete change to the converted model (a config value, a batch field left unfed, an
op on named tensors of the first divergent layer) and is run against those outputs with the same
tolerances (the float32 noise measured on the unchanged model). A hypothesis passes only when
every compared output is within its tolerance afterwards; passing ones are ranked by their least
margin. Nothing is offered that does not pass: when none does, no single known cause explains
the failure. This module decides what to try and judges it; trials.py runs it where the
PyTorch model lives.
"""

from __future__ import annotations

import math
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ..plan.accounting import Plan
from ..tables import Pattern, Table
from ..tables.hypotheses import (
    ConfigHypothesis,
    Hypotheses,
    WeightChange,
    load_hypotheses,
    role_names,
)
from .compare import OutputDiff
from .trials import Trial, TrialOutcome, TrialRequest

HIDDEN = re.compile(r"hidden_states\[(\d+)\]")
LAYER = "L"  # the placeholder counting encoder layers


@dataclass(frozen=True)
class Candidate:
    """A hypothesis made concrete for this model: its sentence, the change as reported, the
    trial that makes it, and the `tf2pt convert` options that apply it (none: no option does)."""

    hypothesis: str
    change: dict[str, Any]
    trial: Trial
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Diagnosis:
    """A tried hypothesis and what the gate said after it."""

    hypothesis: str
    change: dict[str, Any]
    passes: bool
    least_margin: float | None  # tolerance ÷ difference over the outputs reached; None: exact
    options: tuple[str, ...] = ()
    stopped_at: str | None = None  # the output that failed (the trial went no further)
    error: str = ""
    seconds: float = 0.0

    def command(self, base: str) -> str | None:
        """The whole command that applies this fix, from `base` (`tf2pt convert SRC OUT …`): a
        `--set KEY=…` the fix sets again is dropped from `base` (the user's value it corrects)."""
        if not (self.passes and self.options):
            return None
        return " ".join([_without_settings_of(base, self.options), *self.options])

    def to_dict(self, base: str | None = None) -> dict[str, Any]:
        out = {
            "hypothesis": self.hypothesis,
            "change": self.change,
            "passes": self.passes,
            "least_margin": self.least_margin,
        }
        if base is not None and self.command(base):
            out["command"] = self.command(base)
        if self.stopped_at:
            out["failed_at"] = self.stopped_at
        if self.error:
            out["error"] = self.error
        return out | {"seconds": self.seconds}


def _set_key(flag: str, value: str) -> str | None:
    return value.partition("=")[0] if flag == "--set" else None


def _without_settings_of(base: str, options: tuple[str, ...]) -> str:
    """`base` less each `--set KEY=VALUE` whose KEY one of `options` sets."""
    fixed = set()
    for option in options:
        words = shlex.split(option)
        fixed |= {_set_key(f, v) for f, v in zip(words, words[1:], strict=False)} - {None}
    given = shlex.split(base)
    words, kept = list(given), []
    while words:
        word = words.pop(0)
        if words and _set_key(word, words[0]) in fixed:
            words.pop(0)
            continue
        kept.append(word)
    return base if len(kept) == len(given) else shlex.join(kept)


@dataclass
class DiagnosisRun:
    """Every hypothesis tried, best first, and how long it took."""

    entries: list[Diagnosis] = field(default_factory=list)
    seconds: float = 0.0
    tried_on: str = ""  # the first divergent output the weight hypotheses were aimed at
    error: str = ""  # why no hypothesis could be tried (the PyTorch side failed)

    @property
    def fixes(self) -> list[Diagnosis]:
        return [d for d in self.entries if d.passes]

    @property
    def best(self) -> Diagnosis | None:
        return next(iter(self.fixes), None)


def _sentence(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip().replace(" ,", ",")
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _scope(output: str) -> tuple[str, int]:
    """Which tensors can cause a first divergence at `output`: (scope, layer index or -1)."""
    m = HIDDEN.fullmatch(output)
    if m is None:
        return "head", -1
    index = int(m.group(1))
    return ("embeddings", -1) if index == 0 else ("layer", index - 1)


# --- config and input hypotheses ---


def _value_text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _config_candidates(
    hypotheses: Hypotheses, table: Table, config: dict[str, Any]
) -> list[Candidate]:
    keys = hypotheses.family(table.architecture).config_keys
    out = []
    for h in hypotheses.config:
        key = keys.get(h.key, h.key)
        if key not in config or not h.applies(table):
            continue  # this model has no such setting, or does not use it
        tried: list[Any] = []
        for value in h.values:
            if not any(h.alike(value, t) for t in tried):  # one name per function
                tried.append(value)
                out.append(_config_candidate(hypotheses, h, key, config[key], value))
    return [c for c in out if c is not None]


def _config_candidate(
    hypotheses: Hypotheses, h: ConfigHypothesis, key: str, current: Any, value: Any
) -> Candidate | None:
    if h.alike(value, current):
        return None
    says = h.says.format(
        key=key,
        value=_value_text(value),
        current=_value_text(current),
        meaning=h.meaning.get(str(value), ""),
    )
    option = hypotheses.config_command.format(key=key, value=_value_text(value))
    return Candidate(
        _sentence(says.replace(" ()", "")),
        {"config": {key: value}},
        Trial(config=((key, value),)),
        (option,),
    )


def _input_candidates(hypotheses: Hypotheses, fed: set[str]) -> list[Candidate]:
    return [
        Candidate(_sentence(h.says), {"inputs": {"drop": [h.drop]}}, Trial(unfed=(h.drop,)))
        for h in hypotheses.inputs
        if h.drop in fed
    ]


# --- weight hypotheses ---


@dataclass(frozen=True)
class _Targets:
    """The converted model's tensors (name → shape) and the table's role name patterns."""

    shapes: dict[str, tuple[int, ...]]
    roles: dict[str, str]  # role → PyTorch name pattern (bare heads' prefix dropped)
    heads: int

    def pattern(self, path: str) -> Pattern | None:
        role, _, part = path.partition(".")
        if role not in self.roles:
            return None
        return Pattern.compile(self.roles[role] + (f".{part}" if part else ""))

    def matches(self, path: str) -> dict[tuple, str]:
        """Placeholder values → tensor name, for every tensor the role path names."""
        pattern = self.pattern(path)
        if pattern is None:
            return {}
        found = {}
        for name in self.shapes:
            values = pattern.match(name)
            if values is not None:
                found[tuple(sorted(values.items()))] = name
        return found


def _fits(op: str, shapes: list[tuple[int, ...]], heads: int) -> bool:
    """Whether `op` can apply to tensors of these shapes (and would change them)."""
    if op == "transpose":
        return all(len(s) == 2 and s[0] == s[1] for s in shapes)
    if op == "swap":
        return all(a == b for a, b in zip(shapes[::2], shapes[1::2], strict=True))
    if op in ("permute_heads", "unpermute_heads"):  # the two are one when head_dim == heads
        split = [s[0] // heads if heads > 1 and s[0] % heads == 0 else 0 for s in shapes]
        return all(d > 1 and (op == "permute_heads" or d != heads) for d in split)
    return True


def _options(hypotheses: Hypotheses, op: str, tensors: list[str]) -> tuple[str, ...]:
    spec = hypotheses.ops[op]
    if not spec.command:
        return ()
    per = spec.per or len(tensors)
    chunks = [tensors[i : i + per] for i in range(0, len(tensors), per)]
    return tuple(spec.command.format(tensors=",".join(chunk)) for chunk in chunks)


def _weight_candidate(
    hypotheses: Hypotheses,
    change: WeightChange,
    targets: _Targets,
    names: list[str],
    where: str,
    skip: int = 0,
) -> Candidate | None:
    shapes = [targets.shapes[n] for n in names]
    if not names or not _fits(change.op, shapes, targets.heads):
        return None
    says = change.says.format(
        what=hypotheses.word(change.role), other=hypotheses.word(change.other), where=where
    )
    heads = targets.heads if change.op in ("permute_heads", "unpermute_heads") else 0
    return Candidate(
        _sentence(says),
        {"tensors": names, "op": change.op},
        Trial(op=change.op, tensors=tuple(names), heads=heads, skip=skip),
        _options(hypotheses, change.op, names),
    )


def _combos(change: WeightChange, targets: _Targets) -> dict[tuple, list[str]] | None:
    """Placeholder values → the change's tensor names there, where all of them exist; None when
    a role path names no tensor of this model."""
    per_path = [targets.matches(path) for path in change.tensors]
    if not all(per_path):
        return None
    common = set(per_path[0]).intersection(*per_path[1:])
    return {c: [m[c] for m in per_path] for c in sorted(common)}


def _layer_candidates(
    hypotheses: Hypotheses, targets: _Targets, layer: int | None
) -> list[tuple[Candidate | None, Candidate | None, int]]:
    """Changes in layer `layer`; when it is layer 0, also in every layer at once, linked to the
    layer-0-only change: both compute the same outputs up to layer 0's, so when that one already
    failed there, so would this (`layer` None: every layer only — the outputs compared do not
    say which layer diverged). A role without {L} (a layer shared by every layer) is changed
    wherever it occurs. Items: (candidate, the candidate it is linked to, the output index they
    share up to)."""
    out: list = []
    for change in hypotheses.weights["layer"]:
        combos = _combos(change, targets)
        if not combos:
            continue
        everywhere = [n for c in combos for n in combos[c]]
        if not any(k == LAYER for c in combos for k, _ in c):
            shared = "(shared by every layer)"
            out.append(
                (_weight_candidate(hypotheses, change, targets, everywhere, shared), None, 0)
            )
            continue
        single = None
        if layer is not None:
            here = [n for c in combos if (LAYER, layer) in c for n in combos[c]]
            where = f"of layer {layer}"
            single = _weight_candidate(hypotheses, change, targets, here, where, skip=layer)
            out.append((single, None, 0))
        if (layer is None or layer == 0) and len(combos) > 1:
            every = _weight_candidate(hypotheses, change, targets, everywhere, "in every layer")
            out.append((every, single, 1))
    return out


def _flat_candidates(
    hypotheses: Hypotheses, targets: _Targets, scope: str, skip: int
) -> list[Candidate | None]:
    """Changes outside the layers: every layer call before them may be skipped (`skip`)."""
    out = []
    for change in hypotheses.weights[scope]:
        for names in (_combos(change, targets) or {}).values():
            out.append(_weight_candidate(hypotheses, change, targets, names, "", skip))
    return out


def _targets(plan: Plan, hypotheses: Hypotheses) -> _Targets:
    table, head = plan.table, plan.head
    shapes = {m.dst: tuple(m.shape) for m in plan.mapped}
    shapes |= {s.dst: tuple(s.shape) for s in plan.synthesized}
    roles = {r: table.target_name(head, n) for r, n in role_names(table, hypotheses).items()}
    heads_key = hypotheses.family(table.architecture).heads_key
    return _Targets(shapes, roles, int(plan.dims.get(heads_key) or 0))


def layer_modules(plan: Plan, hypotheses: Hypotheses) -> str:
    """A regex of the module names whose calls produce the hidden states: a layer role's name
    cut after its first placeholder (`bert.encoder.layer.{L}`, ALBERT's layer groups)."""
    targets = _targets(plan, hypotheses)
    for change in hypotheses.weights["layer"]:
        for path in change.tensors:
            pattern = targets.pattern(path)
            if pattern is not None and pattern.placeholders:
                m = re.search(r"\{_?[A-Z]\}", pattern.text)
                return re.escape(pattern.text[: m.start()]) + r"\d+"
    return ""


def propose(
    plan: Plan,
    config: dict[str, Any],
    first: str,
    fed: set[str],
    layers: int,
    hypotheses: Hypotheses | None = None,
) -> list[Candidate]:
    """Every hypothesis made concrete for this model (`layers` deep), for a first divergence at
    `first`: config values (from the converted `config`), inputs the batch feeds (`fed`), and
    weight changes on the tensors that output is the first to see. Trials sharing a prefix are
    linked."""
    hypotheses = hypotheses or load_hypotheses()
    out: list[Candidate] = _config_candidates(hypotheses, plan.table, config)
    out += _input_candidates(hypotheses, fed)
    targets = _targets(plan, hypotheses)
    scope, layer = _scope(first)
    if scope == "layer":
        weights = _layer_candidates(hypotheses, targets, layer)
    else:
        skip = layers if scope == "head" else 0
        weights = [(c, None, 0) for c in _flat_candidates(hypotheses, targets, scope, skip)]
        if scope == "head" and layers < 0:  # no hidden state compared: any layer may be wrong
            weights += _layer_candidates(hypotheses, targets, None)
    placed: dict[int, int] = {}  # id(candidate) → its index in `out`
    seen: set[str] = set()
    for candidate, linked, until in weights:
        if candidate is None or repr(candidate.change) in seen:
            continue
        seen.add(repr(candidate.change))
        if id(linked) in placed:
            trial = replace(candidate.trial, same_until=(placed[id(linked)], until))
            candidate = replace(candidate, trial=trial)
        placed[id(candidate)] = len(out)
        out.append(candidate)
    return out


def judge(
    candidates: list[Candidate], outcomes: list[TrialOutcome], tolerances: dict[str, float]
) -> list[Diagnosis]:
    """Each candidate with the gate's verdict after it, passing ones first, by least margin."""
    entries = []
    for candidate, outcome in zip(candidates, outcomes, strict=True):
        reached = outcome.max_abs
        complete = not (outcome.stopped_at or outcome.error) and set(tolerances) <= set(reached)
        passes = complete and all(reached[n] <= tol for n, tol in tolerances.items())
        margins = [tolerances[n] / v if v > 0 else math.inf for n, v in reached.items()]
        least = min(margins, default=0.0 if outcome.error else math.inf)
        entries.append(
            Diagnosis(
                candidate.hypothesis,
                candidate.change,
                passes,
                None if math.isinf(least) else least,
                candidate.options,
                outcome.stopped_at,
                outcome.error,
                outcome.seconds,
            )
        )

    def rank(d: Diagnosis) -> tuple:
        margin = math.inf if d.least_margin is None and not d.error else d.least_margin or 0.0
        return (not d.passes, -margin)

    return sorted(entries, key=rank)


TryTrials = Callable[[TrialRequest], list[TrialOutcome]]


def diagnose(
    plan: Plan,
    config: dict[str, Any],
    diffs: list[OutputDiff],
    fed: set[str],
    references: list[dict],
    try_trials: TryTrials,
    hypotheses: Hypotheses | None = None,
) -> DiagnosisRun:
    """Try every hypothesis for the failure `diffs` describe; `try_trials` runs them where the
    converted model is (torch_side.py). Nothing is tried when nothing failed or when an output
    holds NaN/Inf (the weights do: no layout change explains that)."""
    start = time.perf_counter()
    first = next((d for d in diffs if not d.passed), None)
    if first is None or first.nonfinite:
        return DiagnosisRun()
    hypotheses = hypotheses or load_hypotheses()
    layers = sum(HIDDEN.fullmatch(d.name) is not None for d in diffs) - 1
    candidates = propose(plan, config, first.name, fed, layers, hypotheses)
    tolerances = {d.name: d.tolerance for d in diffs}
    request = TrialRequest(
        [c.trial for c in candidates], references, tolerances, layer_modules(plan, hypotheses)
    )
    entries = judge(candidates, try_trials(request), tolerances)
    return DiagnosisRun(entries, round(time.perf_counter() - start, 3), first.name)
