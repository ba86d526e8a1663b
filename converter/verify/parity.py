"""Run both models on the same inputs and judge parity; the reports are written by report.py."""

from __future__ import annotations

import contextlib
import importlib.metadata
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..capabilities import VERIFY, VERIFY_LAYOUT_MODULES, require
from ..convert import Analysis
from ..errors import ParityError, UsageError
from .compare import OutputDiff, compare_outputs, uncompared
from .inputs import make_inputs
from .runners import TF_RUNNERS, TorchRunner

DEFAULT_ATOL = 1e-5


@dataclass
class ParityResult:
    passed: bool
    atol: float
    diffs: list[OutputDiff]
    inputs: dict[str, Any]
    versions: dict[str, str]
    source: str
    output: str
    class_name: str
    seconds: dict[str, float] = field(default_factory=dict)
    not_compared: list[str] = field(default_factory=list)  # outputs the source model lacks

    @property
    def max_abs_diff(self) -> float:
        return max((d.max_abs_diff for d in self.diffs), default=0.0)

    @property
    def first_divergence(self) -> OutputDiff | None:
        return next((d for d in self.diffs if not d.passed), None)

    def to_dict(self) -> dict[str, Any]:
        first = self.first_divergence
        return {
            "passed": self.passed,
            "atol": self.atol,
            "max_abs_diff": self.max_abs_diff,
            "first_divergence": None
            if first is None
            else {"name": first.name, "index": first.index, "description": first.description},
            "outputs": [d.to_dict() for d in self.diffs],
            "not_compared": self.not_compared,
            "class": self.class_name,
            "source": self.source,
            "output": self.output,
            "inputs": self.inputs,
            "versions": self.versions,
            "seconds": self.seconds,
        }

    def failure(self) -> ParityError | None:
        first = self.first_divergence
        if first is None:
            return None
        if first.nonfinite:
            return ParityError(
                f"parity failed: {first.name} ({first.description}) holds {first.nonfinite} "
                "NaN/Inf value(s) across the two models",
                self.output,
                "the weights hold NaN/Inf (see the conversion warnings), copied as they are; "
                "see parity_report.md",
            )
        return ParityError(
            f"parity failed: first divergence at {first.name} ({first.description}), "
            f"max abs diff {first.max_abs_diff:.3g} > atol {self.atol:g}",
            self.output,
            "see parity_report.md in the output directory",
        )


def _versions() -> dict[str, str]:
    import numpy
    import tensorflow
    import torch
    import transformers

    from .. import __version__

    versions = {
        "tf2pt": __version__,
        "tensorflow": tensorflow.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }
    for package in ("keras", "keras-hub"):  # the runner of keras-hub sources
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return versions


def run_parity(
    analysis: Analysis,
    out_dir: Path,
    atol: float = DEFAULT_ATOL,
    texts: tuple[str, ...] = (),
    progress: Callable[[str], None] = lambda _: None,
    published_as: Path | None = None,
) -> ParityResult:
    """Build the source TF model and the converted PyTorch model, run both, compare."""
    source, plan = analysis.source, analysis.plan
    if source.layout not in TF_RUNNERS:
        raise UsageError(f"no TF runner for layout '{source.layout}' yet", source.path)
    require(
        VERIFY,
        f"verifying a {source.layout} source",
        source.path,
        also=VERIFY_LAYOUT_MODULES.get(source.layout, ()),
    )
    tokenizer_dir = source.tokenizer_files[0].parent if source.tokenizer_files else None
    inputs = make_inputs(
        plan.dims,
        plan.table.position_offset,
        multiple_choice=plan.head == "multiple-choice",
        texts=texts,
        tokenizer_dir=tokenizer_dir,
    )
    seconds = {}
    t0 = time.perf_counter()
    progress(f"building the TF model (TF{plan.class_name}) from {source.path}")
    tf_runner = TF_RUNNERS[source.layout](source, plan)
    progress("running the TF model")
    references = [tf_runner.run(batch) for batch in inputs.batches]
    seconds["tensorflow"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    progress(f"loading the PyTorch model ({plan.class_name}) strictly from the output")
    pt_runner = TorchRunner(out_dir, plan.class_name)
    progress("running the PyTorch model")
    candidates = [pt_runner.run(batch) for batch in inputs.batches]
    seconds["pytorch"] = round(time.perf_counter() - t0, 3)
    runs = [
        (r, c, b.flat_mask())
        for r, c, b in zip(references, candidates, inputs.batches, strict=True)
    ]
    diffs = compare_outputs(runs, atol)
    return ParityResult(
        passed=all(d.passed for d in diffs),
        atol=atol,
        diffs=diffs,
        inputs=inputs.describe(),
        versions=_versions(),
        source=str(source.path),
        output=str(published_as or out_dir),
        class_name=plan.class_name,
        seconds=seconds,
        not_compared=uncompared(runs),
    )
