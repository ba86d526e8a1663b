"""Trying a change on the converted PyTorch model, against TF outputs already computed.

The PyTorch half of a diagnosis (diagnosis.py decides what to try and judges the results). It runs
where the converted float32 model already lives (torch_side.py: the child process, or this one),
so no trial reloads anything: a config change rebuilds the model's modules on the meta device and
hands them the very same tensors; a weight change edits the named tensors in place and puts them
back; an input change feeds the batch without a field.

Most hypotheses are wrong, and a wrong one shows at the first divergent output, so a trial stops
as soon as an output exceeds its tolerance (the maximum over some rows already exceeding it, the
maximum over all does too):
- it first runs on a probe, the shortest rows of the last batch cut to their length (a few
  tokens), and goes on to the full batches only if the probe passes;
- hooks on the encoder layers (the modules matching `layers`) see hidden_states[0] (the first
  layer's input) and hidden_states[i] (the i-th layer call's output) as they are computed;
- a trial that changes nothing before layer k (`skip` = k) takes the first k layer calls' outputs
  from the unchanged model's own float32 run instead of computing them again.
A check on a short input first proves the hooks see what the model returns and that skipped
layers give the same outputs; where either fails, trials run whole.
"""

from __future__ import annotations

import contextlib
import copy
import re
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .compare import token_rows
from .inputs import Batch
from .runners import Outputs, ordered_outputs

OPS = ("transpose", "swap", "permute_heads", "unpermute_heads", "zero")
PROBE_TOKENS = 16  # rows at most this long make the probe


@dataclass(frozen=True)
class Trial:
    """One concrete change: config values, or an op on named tensors (a swap exchanges
    consecutive pairs), or batch fields left unfed. `skip`: how many layer calls the change
    leaves untouched (their outputs may come from the unchanged model's run). `same_until` =
    (index of an earlier trial, output index): both compute the same outputs up to that one, so
    when the earlier trial stopped there or before, this one would too."""

    config: tuple[tuple[str, Any], ...] = ()
    op: str = ""
    tensors: tuple[str, ...] = ()
    heads: int = 0
    unfed: tuple[str, ...] = ()
    skip: int = 0
    same_until: tuple[int, int] | None = None


@dataclass(frozen=True)
class TrialRequest:
    trials: list[Trial]
    references: list[Outputs]  # the TF outputs, per batch
    tolerances: dict[str, float]  # per compared output: the gate's tolerance
    layers: str  # regex of the module names whose calls give the hidden states


@dataclass
class TrialOutcome:
    """max |TF − PyTorch| per output reached (over the rows run); `stopped_at` is the output
    that exceeded its tolerance (the trial went no further), None when it ran to the end."""

    max_abs: dict[str, float] = field(default_factory=dict)
    stopped_at: str | None = None
    error: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class _Rows:
    """Rows to run: their inputs, the TF outputs and the unchanged model's float32 outputs;
    `threads` 1 for a probe (see _threads)."""

    batch: Batch
    reference: Outputs
    baseline: Outputs
    threads: int | None = None


class _Exceeded(Exception):
    def __init__(self, name: str):
        self.name = name


def _max_abs(candidate: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    """max |candidate − reference| over non-padding rows (float32 operands subtract exactly
    enough: the difference of two close float32 values is exact)."""
    delta = np.abs(token_rows(candidate, mask) - token_rows(reference, mask)).ravel()
    if not delta.size:
        return 0.0
    worst = float(delta.max())
    return worst if np.isfinite(worst) and not np.isnan(delta).any() else float("inf")


def _hidden(index: int) -> str:
    return f"hidden_states[{index}]"


class _Layers:
    """Watches (and may short-cut) the calls of the encoder's layer modules during one forward
    pass: `check(i, tensor)` sees hidden_states[i]; the first `skip` calls return the
    `cached` hidden states instead of computing them, shaped as the layer's own return
    (`returns`: a tuple of that length, or 0 for a bare tensor)."""

    def __init__(self, check, skip: int = 0, cached: Outputs | None = None, returns: int = 1):
        self.check, self.skip, self.cached, self.returns = check, skip, cached or {}, returns
        self.calls = 0

    def before(self, module, args, kwargs) -> None:
        if self.calls == 0:
            self.check(0, args[0] if args else kwargs["hidden_states"])

    def after(self, module, args, output) -> None:
        self.calls += 1
        self.check(self.calls, output[0] if isinstance(output, tuple) else output)

    def forward(self, original):
        def call(*args, **kwargs):
            if self.calls >= self.skip:
                return original(*args, **kwargs)
            import torch

            hidden = torch.from_numpy(self.cached[_hidden(self.calls + 1)]).clone()
            return (hidden,) + (None,) * (self.returns - 1) if self.returns else hidden

        return call


@contextlib.contextmanager
def _attached(model, layers: str, watch: _Layers | None) -> Iterator[None]:
    handles, patched = [], []
    if watch is not None:
        pattern = re.compile(layers)
        for name, module in model.named_modules():
            if pattern.fullmatch(name):
                handles.append(module.register_forward_pre_hook(watch.before, with_kwargs=True))
                handles.append(module.register_forward_hook(watch.after))
                if watch.skip:
                    module.forward = watch.forward(module.forward)
                    patched.append(module)
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        for module in patched:
            del module.forward  # the class's own again


def _forward(model, batch: Batch, unfed: tuple[str, ...] = ()):
    import torch

    feed = {
        k: torch.from_numpy(v.astype(np.int64))
        for k, v in batch.as_dict().items()
        if k not in unfed
    }
    default = torch.get_default_dtype()
    torch.set_default_dtype(model.dtype)  # as TorchRunner.run: masks made on the fly
    try:
        with torch.no_grad():
            return model(**feed, output_hidden_states=True, return_dict=True)
    finally:
        torch.set_default_dtype(default)


def _numpy(model_output) -> Outputs:
    return ordered_outputs(model_output, lambda t: t.detach().numpy())


@dataclass(frozen=True)
class Shortcuts:
    """What the self-check proved: hooks see the hidden states (early stops are sound), and
    layer calls may be served from a run's outputs (`returns`: the layers' return shape)."""

    watch: bool
    skip: bool
    returns: int


def check_shortcuts(model, batch: Batch, layers: str) -> Shortcuts:
    """Both shortcuts tried on the batch's first row cut to a few tokens (cheap at any size):
    the hooks must see exactly the hidden states the model returns, and a run whose layer calls
    all come from those hidden states must return the same outputs."""
    short = Batch(
        *(
            None if a is None else np.array(a[:1, ..., :6], copy=True)
            for a in (batch.input_ids, batch.attention_mask, batch.token_type_ids)
        )
    )
    short.attention_mask[...] = 1
    seen: dict[int, np.ndarray] = {}
    shapes: list[int] = []

    def record(module, args, output):
        shapes.append(len(output) if isinstance(output, tuple) else 0)

    watch = _Layers(lambda i, h: seen.__setitem__(i, h.detach().numpy().copy()))
    with _attached(model, layers, watch):
        handles = [
            m.register_forward_hook(record)
            for n, m in model.named_modules()
            if layers and re.fullmatch(layers, n)
        ]
        try:
            returned = _numpy(_forward(model, short))
        finally:
            for handle in handles:
                handle.remove()
    count = sum(k.startswith("hidden_states[") for k in returned)
    hidden = [returned[_hidden(i)] for i in range(count)]
    sees = (
        bool(layers)
        and count >= 2
        and sorted(seen) == list(range(count))
        and all(np.array_equal(seen[i], h) for i, h in enumerate(hidden))
    )
    if not sees or len(set(shapes)) != 1:
        return Shortcuts(sees, False, 1)
    cached = {_hidden(i): h for i, h in enumerate(hidden)}
    skipping = _Layers(lambda i, h: None, len(hidden) - 1, cached, shapes[0])
    try:
        with _attached(model, layers, skipping):
            again = _numpy(_forward(model, short))
        same = list(again) == list(returned) and all(
            np.array_equal(again[k], returned[k]) for k in returned
        )
    except Exception:  # the layer's return is used in ways a short cut cannot mimic
        same = False
    return Shortcuts(True, same, shapes[0])


@contextlib.contextmanager
def _threads(count: int | None) -> Iterator[None]:
    """Run with `count` threads (None: as set). A pass over a few tokens is a chain of tiny
    ops; with several threads each one waits for all of them, which on a busy machine costs
    a scheduler slice per op (measured: 2.0 s on two threads, 0.19 s on one)."""
    import torch

    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def rebuilt(model, config: dict[str, Any]):
    """The same model class built under `config` changes, holding the very same tensors (the
    modules are made on the meta device, without initialising weights, then given the original
    parameters and buffers)."""
    import torch

    try:
        from transformers.modeling_utils import no_init_weights
    except ImportError:  # another transformers: initialising on meta costs time, not memory
        no_init_weights = contextlib.nullcontext
    changed = copy.deepcopy(model.config)
    for key, value in config.items():
        setattr(changed, key, value)
    with torch.device("meta"), no_init_weights():
        fresh = type(model)(changed)
    original = dict(model.named_modules())
    for name, module in fresh.named_modules():
        source = original[name]
        for key in list(module._parameters):
            module._parameters[key] = source._parameters[key]
        for key in list(module._buffers):
            module._buffers[key] = source._buffers[key]
    return fresh.eval()


def apply_op(op: str, tensors: list, heads: int) -> None:
    """Change `tensors` (torch tensors, edited in place) by `op`; see mappings/shared/
    hypotheses.yaml `ops:` for what each does."""
    if op == "swap":
        for a, b in zip(tensors[::2], tensors[1::2], strict=True):
            kept = a.clone()
            a.copy_(b)
            b.copy_(kept)
        return
    for t in tensors:
        if op == "transpose":
            t.copy_(t.t().clone())
        elif op == "zero":
            t.zero_()
        elif op in ("permute_heads", "unpermute_heads"):
            rows = t.shape[0]
            split = (heads, rows // heads) if op == "permute_heads" else (rows // heads, heads)
            t.copy_(t.reshape(*split, -1).transpose(0, 1).reshape(t.shape).clone())
        else:
            raise ValueError(f"unknown op {op!r}")


@contextlib.contextmanager
def _changed(model, trial: Trial) -> Iterator[Any]:
    """The model with `trial`'s change made; the original tensors are back afterwards."""
    if trial.config:
        yield rebuilt(model, dict(trial.config))
        return
    if not trial.op:
        yield model
        return
    import torch

    tensors = [model.get_parameter(name).data for name in trial.tensors]
    kept = [t.clone() for t in tensors]
    try:
        with torch.no_grad():
            apply_op(trial.op, tensors, trial.heads)
        yield model
    finally:
        with torch.no_grad():
            for t, k in zip(tensors, kept, strict=True):
                t.copy_(k)


def _examples(array: np.ndarray, batch: Batch, keep: np.ndarray, width: int) -> np.ndarray:
    """`array` (an output of `batch`) for the examples `keep`; a per-token output (shaped as
    the mask, as compare.py tells them) cut to `width` tokens."""
    mask = batch.flat_mask()
    per_token = array.ndim >= 2 and tuple(array.shape[:2]) == mask.shape
    examples, flat = batch.input_ids.shape[0], mask.shape[0]
    if array.shape[0] == flat and flat != examples:
        choices = flat // examples
        array = array.reshape(examples, choices, *array.shape[1:])[keep]
        array = array.reshape(-1, *array.shape[2:])
    else:
        array = array[keep]
    if per_token:
        array = array[:, :width]
    return np.ascontiguousarray(array)


def probe(rows: _Rows) -> _Rows | None:
    """The examples of `rows` no longer than PROBE_TOKENS, cut to their length: cheap to run,
    and a hypothesis they already reject is rejected."""
    batch = rows.batch
    lengths = batch.attention_mask.sum(axis=-1)
    longest = lengths.reshape(lengths.shape[0], -1).max(axis=1)
    keep = longest <= PROBE_TOKENS
    if not keep.any() or keep.all():
        return None
    width = int(longest[keep].max())
    cut = Batch(
        *(
            None if a is None else np.ascontiguousarray(a[keep][..., :width])
            for a in (batch.input_ids, batch.attention_mask, batch.token_type_ids)
        )
    )
    return _Rows(
        cut,
        {k: _examples(v, batch, keep, width) for k, v in rows.reference.items()},
        {k: _examples(v, batch, keep, width) for k, v in rows.baseline.items()},
        threads=1,
    )


class _Run:
    """One trial over its rows, stopping at the first output beyond its tolerance."""

    def __init__(self, request: TrialRequest, shortcuts: Shortcuts, trial: Trial):
        self.request, self.shortcuts, self.trial = request, shortcuts, trial
        self.outcome = TrialOutcome()

    def _record(self, name: str, worst: float) -> None:
        self.outcome.max_abs[name] = max(self.outcome.max_abs.get(name, 0.0), worst)
        if not worst <= self.request.tolerances[name]:
            raise _Exceeded(name)

    def rows(self, model, rows: _Rows) -> None:
        mask = rows.batch.flat_mask()
        tolerances = self.request.tolerances

        def check(index: int, hidden) -> None:
            name = _hidden(index)
            if name in tolerances and name in rows.reference:
                self._record(name, _max_abs(hidden.detach().numpy(), rows.reference[name], mask))

        layers = None
        if self.shortcuts.watch:
            skip = self.trial.skip if self.shortcuts.skip else 0
            layers = _Layers(check, skip, rows.baseline, self.shortcuts.returns)
        with _threads(rows.threads), _attached(model, self.request.layers, layers):
            outputs = _numpy(_forward(model, rows.batch, self.trial.unfed))
        for name in rows.reference:
            if name in tolerances:
                self._record(name, _max_abs(outputs[name], rows.reference[name], mask))


def run_trials(
    model, batches: list[Batch], baseline: list[Outputs], request: TrialRequest
) -> list[TrialOutcome]:
    """Each trial's outcome, in order; `baseline` holds the unchanged model's float32 outputs
    per batch. A trial that raises is recorded with its error (and never passes)."""
    with _threads(1):
        shortcuts = check_shortcuts(model, batches[-1], request.layers)
    full = [_Rows(*r) for r in zip(batches, request.references, baseline, strict=True)]
    first = probe(full[-1])
    rows = ([first] if first is not None else []) + full
    order = list(request.references[0])
    outcomes: list[TrialOutcome] = []
    for trial in request.trials:
        if trial.same_until is not None:
            earlier, until = trial.same_until
            stopped = outcomes[earlier].stopped_at
            if stopped is not None and stopped in order and order.index(stopped) <= until:
                outcomes.append(replace(outcomes[earlier], seconds=0.0))
                continue
        start = time.perf_counter()
        run = _Run(request, shortcuts, trial)
        try:
            with _changed(model, trial) as candidate:
                for part in rows:
                    run.rows(candidate, part)
        except _Exceeded as exc:
            run.outcome.stopped_at = exc.name
        except Exception:  # a trial the model cannot take: recorded, never a fix
            run.outcome = TrialOutcome(error=traceback.format_exc(limit=3))
        run.outcome.seconds = round(time.perf_counter() - start, 3)
        outcomes.append(run.outcome)
    return outcomes
