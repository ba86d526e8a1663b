"""`tf2pt doctor`: why a PyTorch checkpoint does not load cleanly into a transformers model, and
a lossless repair of it when there is one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..plan.fates import SourceFate
from .checkpoint import Checkpoint, open_checkpoint
from .diagnose import Diagnosis, diagnose
from .repairs import load_repairs
from .target import Target, base_config, build_target, candidate_classes


@dataclass
class Examination:
    checkpoint: Checkpoint
    target: Target
    diagnosis: Diagnosis


def _losses(diagnosis: Diagnosis) -> tuple[int, int]:
    """How much a class would lose with this checkpoint, then how much repairing it needs."""
    lost = sum(k.fate.lost for k in diagnosis.keys) + len(diagnosis.missing)
    return lost, sum(k.fate is SourceFate.REPAIRED for k in diagnosis.keys)


def examine(
    path: Path,
    *,
    model: Path | None = None,
    arch: str | None = None,
    head: str | None = None,
    num_labels: int | None = None,
    drop_head: bool = False,
    overrides: dict[str, object] | None = None,
) -> Examination:
    """Open the checkpoint, decide the model it should load into, and diagnose every key.

    Without --head and without a config naming the class, every head of the architecture is
    tried and the one that loses the fewest weights is chosen (and said so in the notes).
    """
    book = load_repairs()
    checkpoint = open_checkpoint(path, book)
    overrides = dict(overrides or {})
    config, origin = base_config(checkpoint, model, arch, overrides)
    choices: dict[str, object] = {f"--set {k}": v for k, v in overrides.items()}
    if num_labels is not None:
        choices["num_labels"] = num_labels
    if drop_head:
        choices["drop_head"] = True
    tried, unbuildable = [], None
    for class_name in candidate_classes(config, arch, head):
        try:
            target = build_target(config, class_name, num_labels, origin)
        except InputError as exc:  # not this head (DistilBERT's QA class insists on 2 labels)
            unbuildable = exc
            continue
        diagnosis = diagnose(checkpoint, target, drop_head, choices)
        tried.append(Examination(checkpoint, target, diagnosis))
    if not tried:
        raise unbuildable
    best = min(tried, key=lambda e: _losses(e.diagnosis))
    if len(tried) > 1:
        best.diagnosis.notes.append(
            f"no class named by a config or --head: {best.target.class_name} fits the keys best "
            f"of {len(tried)} heads — pass --head to choose another"
        )
    return best


__all__ = ["Examination", "examine"]
