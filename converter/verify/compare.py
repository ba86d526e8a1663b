"""Per-output differences between the two models, on non-padding positions only."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

from .runners import Outputs


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
    passed: bool
    argmax_agreement: float | None = None  # for logits: share of rows whose argmax agrees
    nonfinite: int = 0  # NaN/Inf values on either side

    def to_dict(self) -> dict:
        return asdict(self)


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


def _select(array: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Keep non-padding positions when the output is per token ([sequences, len, …])."""
    if array.ndim >= 2 and tuple(array.shape[:2]) == mask.shape:
        return array[mask]
    return array


def compare_outputs(
    runs: list[tuple[Outputs, Outputs, np.ndarray]], atol: float
) -> list[OutputDiff]:
    """Metrics per output over all batches: `runs` holds (reference, candidate, mask) per batch.

    Every reference output must have a candidate; a candidate output the source model does not
    have (the pooler PyTorch's RobertaModel builds and keras-hub's backbone lacks) is left out
    here and listed by `uncompared`."""
    names = list(runs[0][0])
    for reference, candidate, _ in runs:
        if list(reference) != names or set(names) - set(candidate):
            raise ValueError(
                f"the two models return different outputs: {names} vs {list(candidate)}"
            )
    diffs = []
    for index, name in enumerate(names):
        ref = np.concatenate([_select(r[name], m).astype(np.float64) for r, _, m in runs])
        cand = np.concatenate([_select(c[name], m).astype(np.float64) for _, c, m in runs])
        if ref.shape != cand.shape:
            raise ValueError(f"output {name}: shapes differ {ref.shape} vs {cand.shape}")
        diffs.append(_metrics(name, index, ref, cand, atol, list(runs[0][0][name].shape[1:])))
    return diffs


def uncompared(runs: list[tuple[Outputs, Outputs, np.ndarray]]) -> list[str]:
    """Outputs of the converted model that the source model has no counterpart for."""
    reference, candidate, _ = runs[0]
    return [name for name in candidate if name not in reference]


def _metrics(
    name: str, index: int, ref: np.ndarray, cand: np.ndarray, atol: float, shape: list[int]
) -> OutputDiff:
    nonfinite = int((~np.isfinite(ref)).sum() + (~np.isfinite(cand)).sum())
    delta = np.abs(ref - cand)
    max_abs = float(delta.max()) if delta.size else 0.0
    scale = float(np.abs(ref).max()) if ref.size else 0.0
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
        passed=nonfinite == 0 and max_abs <= atol,
        argmax_agreement=argmax,
        nonfinite=nonfinite,
    )
