"""Per-output differences between the two models, on non-padding positions only, judged
against the noise measured on the converted model in its own dtype (see gate.py)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

from .gate import Gate
from .runners import Outputs

Run = tuple[Outputs, Outputs, Outputs, np.ndarray]  # reference, candidate, its float64 run, mask


@dataclass(frozen=True)
class OutputDiff:
    name: str
    index: int  # position in forward order
    description: str
    shape: list[int]  # per-row shape (batch dimension left out)
    max_abs_diff: float
    mean_abs_diff: float
    max_rel_diff: float  # max |a-b| divided by the largest |reference| value of this output
    cosine: float
    scale: float  # largest |reference| value of this output
    noise: float  # max |candidate − float64| of the converted model: its dtype's rounding noise
    tolerance: float  # the largest max abs diff the gate allows for this output
    passed: bool
    # for logits: share of rows whose argmax (top-1) agrees with the float32 reference's
    argmax_agreement: float | None = None
    nonfinite: int = 0  # NaN/Inf values on either side

    @property
    def margin(self) -> float | None:
        """How many times the difference could grow before failing (None when it is 0)."""
        return self.tolerance / self.max_abs_diff if self.max_abs_diff > 0 else None

    def to_dict(self) -> dict:
        return asdict(self) | {"margin": self.margin}


def describe(name: str) -> str:
    m = re.fullmatch(r"hidden_states\[(\d+)\]", name)
    if m:
        i = int(m.group(1))
        return "embeddings output" if i == 0 else f"output of encoder layer {i - 1}"
    return {
        "pooler_output": "pooler output",
        "logits": "head output (logits)",
        "start_logits": "head output (answer start logits)",
        "end_logits": "head output (answer end logits)",
        "prediction_logits": "head output (masked-LM logits)",
        "seq_relationship_logits": "head output (next-sentence logits)",
    }.get(name, "head output")


def token_rows(array: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Keep non-padding positions when the output looks per token in this one batch
    ([sequences, len, …]; the trials' per-batch check — compare_outputs decides over all
    batches, see _per_token)."""
    if array.ndim >= 2 and tuple(array.shape[:2]) == mask.shape:
        return array[mask]
    return array


def _per_token(name: str, runs: list[Run]) -> bool:
    """Whether an output is per token ([sequences, len, …]) in every batch. Batches differ in
    width, so a per-row output whose size equals one batch's width (3 labels, a 3-token batch)
    is not taken for a per-token one."""
    return all(
        run[0][name].ndim >= 2 and tuple(run[0][name].shape[:2]) == run[3].shape for run in runs
    )


def _select(array: np.ndarray, mask: np.ndarray, per_token: bool) -> np.ndarray:
    """Keep non-padding positions of a per-token output."""
    return array[mask] if per_token else array


def compare_outputs(runs: list[Run], gate: Gate) -> list[OutputDiff]:
    """Metrics per output over all batches: `runs` holds (reference, candidate in its dtype,
    candidate in float64, mask) per batch.

    Every reference output must have a candidate; a candidate output the source model does not
    have (the pooler PyTorch's RobertaModel builds and keras-hub's backbone lacks) is left out
    here and listed by `uncompared`."""
    names = list(runs[0][0])
    for reference, candidate, _, _ in runs:
        if list(reference) != names or set(names) - set(candidate):
            raise ValueError(
                f"the two models return different outputs: {names} vs {list(candidate)}"
            )
    diffs = []
    for index, name in enumerate(names):
        per_token = _per_token(name, runs)
        ref, cand, exact = (
            np.concatenate(
                [_select(run[k][name], run[3], per_token).astype(np.float64) for run in runs]
            )
            for k in range(3)
        )
        if not ref.shape == cand.shape == exact.shape:
            raise ValueError(f"output {name}: shapes differ {ref.shape} vs {cand.shape}")
        shape = list(runs[0][0][name].shape[1:])
        diffs.append(_metrics(name, index, ref, cand, exact, gate, shape))
    return diffs


def uncompared(runs: list[Run]) -> list[str]:
    """Outputs of the converted model that the source model has no counterpart for."""
    reference, candidate, _, _ = runs[0]
    return [name for name in candidate if name not in reference]


def _largest(values: np.ndarray) -> float:
    """The largest value, NaNs left out (they are counted and fail the output separately)."""
    return float(np.nanmax(values)) if values.size and not np.isnan(values).all() else 0.0


def _metrics(
    name: str,
    index: int,
    ref: np.ndarray,
    cand: np.ndarray,
    exact: np.ndarray,
    gate: Gate,
    shape: list[int],
) -> OutputDiff:
    nonfinite = int((~np.isfinite(ref)).sum() + (~np.isfinite(cand)).sum())
    delta = np.abs(ref - cand)
    max_abs = float(delta.max()) if delta.size else 0.0
    scale = _largest(np.abs(ref))
    noise = _largest(np.abs(cand - exact))
    tolerance = gate.tolerance(noise, scale)
    norms = float(np.linalg.norm(ref) * np.linalg.norm(cand))
    cosine = float((ref.ravel() @ cand.ravel()) / norms) if norms else 1.0
    argmax = None
    if "logits" in name and ref.ndim >= 1 and ref.shape[-1] > 1:
        argmax = float((ref.argmax(-1) == cand.argmax(-1)).mean())
    return OutputDiff(
        name=name,
        index=index,
        description=describe(name),
        shape=shape,
        max_abs_diff=max_abs,
        mean_abs_diff=float(delta.mean()) if delta.size else 0.0,
        max_rel_diff=max_abs / scale if scale else max_abs,
        cosine=cosine,
        scale=scale,
        noise=noise,
        tolerance=tolerance,
        passed=nonfinite == 0 and max_abs <= tolerance,
        argmax_agreement=argmax,
        nonfinite=nonfinite,
    )
