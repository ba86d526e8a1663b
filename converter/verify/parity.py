"""Run both models on the same inputs and judge parity; the reports are written by report.py.

The TF reference runs in this process; the converted PyTorch model runs in the dtype its weights
are stored in and in float64 (torch_side.py), in a child process when that overlaps the two
frameworks' start-up."""

from __future__ import annotations

import contextlib
import importlib.metadata
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..capabilities import VERIFY, VERIFY_RUNNER_MODULES, require
from ..convert import Analysis
from ..errors import ParityError, UsageError
from ..write.dtypes import stored_dtype
from .compare import OutputDiff, compare_outputs, uncompared
from .gate import MEASURED_NOISE, Gate
from .inputs import make_inputs
from .reference_spec import feeds, runner_name
from .resolution import resolution
from .runners import declared_runner
from .torch_side import TorchSide


@dataclass
class ParityResult:
    passed: bool
    gate: Gate
    reference: str  # what the source model was run as
    diffs: list[OutputDiff]
    inputs: dict[str, Any]
    versions: dict[str, str]
    source: str
    output: str
    class_name: str
    seconds: dict[str, float] = field(default_factory=dict)
    not_compared: list[str] = field(default_factory=list)  # outputs the source model lacks
    tokenizer: Any = None  # tokenizer parity (converter.tokenizers), when it was checked

    @property
    def precision(self) -> str:
        """The dtype the converted model was run in: the one its weights are stored in."""
        return self.gate.precision

    @property
    def max_abs_diff(self) -> float:
        return max((d.max_abs_diff for d in self.diffs), default=0.0)

    @property
    def least_margin(self) -> float | None:
        """The smallest tolerance ÷ difference over the outputs (None when all are exact)."""
        return min((d.margin for d in self.diffs if d.margin is not None), default=None)

    @property
    def first_divergence(self) -> OutputDiff | None:
        return next((d for d in self.diffs if not d.passed), None)

    def to_dict(self) -> dict[str, Any]:
        first = self.first_divergence
        return {
            "passed": self.passed,
            "criterion": self.gate.describe(),
            "gate": self.gate.to_dict(),
            "max_abs_diff": self.max_abs_diff,
            "least_margin": self.least_margin,
            "first_divergence": None
            if first is None
            else {"name": first.name, "index": first.index, "description": first.description},
            "outputs": [d.to_dict() for d in self.diffs],
            "not_compared": self.not_compared,
            "class": self.class_name,
            "dtype": self.precision,
            "resolution": resolution(self.precision),
            "reference": self.reference,
            "source": self.source,
            "output": self.output,
            "inputs": self.inputs,
            "versions": self.versions,
            "seconds": self.seconds,
        }

    def failure(self) -> ParityError | None:
        """The model's first divergence, else a tokenizer mismatch, as the error to raise."""
        first = self.first_divergence
        if first is None and self.tokenizer is not None:
            from ..tokenizers import parity_failure

            return parity_failure(self.tokenizer, Path(self.output))
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
            f"max abs diff {first.max_abs_diff:.3g} > tolerance {first.tolerance:.3g} "
            f"({self.gate.short()}, noise {first.noise:.3g})",
            self.output,
            "see parity_report.md",
        )


def _versions() -> dict[str, str]:
    """Versions of what ran, read from package metadata (importing torch here just to ask its
    version would cost this process the start-up the child process saved)."""
    from .. import __version__

    versions = {"tf2pt": __version__}
    for package in ("tensorflow", "torch", "transformers", "numpy", "keras", "keras-hub"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    if "tensorflow" not in versions:  # the CPU build is distributed as tensorflow-cpu
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions["tensorflow"] = importlib.metadata.version("tensorflow-cpu")
    return versions | {"python": platform.python_version()}


def run_parity(
    analysis: Analysis,
    out_dir: Path,
    gate: Gate = MEASURED_NOISE,
    texts: tuple[str, ...] = (),
    progress: Callable[[str], None] = lambda _: None,
    published_as: Path | None = None,
    own_process: bool = False,
) -> ParityResult:
    """Build the source TF model and the converted PyTorch model, run both, compare.

    `own_process`: the caller (the CLI) owns this process, so the PyTorch half may run in a
    child process and this one may be configured to never import torch (torch_side.py)."""
    source, plan = analysis.source, analysis.plan
    name = runner_name(plan.table.reference)
    if not name:
        raise UsageError(
            f"mappings/{plan.table.name}.yaml declares no TF reference to verify against",
            source.path,
        )
    require(
        VERIFY,
        f"verifying a {source.layout} source",
        source.path,
        also=VERIFY_RUNNER_MODULES[name],
    )
    tokenizer_dir = source.tokenizer_files[0].parent if source.tokenizer_files else None
    inputs = make_inputs(
        plan.dims,
        plan.table.position_offset,
        input_shape=plan.input_shape,
        token_types="token_type_ids" in feeds(plan.table.reference).values(),
        texts=texts,
        tokenizer_dir=tokenizer_dir,
    )
    seconds = {}
    runner = declared_runner(plan)
    reference = runner.reference(source, plan)
    gate = replace(gate, precision=stored_dtype(out_dir))
    progress(f"running the converted model ({plan.class_name}) in {gate.precision} and float64")
    ties = tuple((t.dst, t.same_as) for t in plan.tied)
    torch_side = TorchSide(
        out_dir, plan.class_name, inputs.batches, own_process, gate.precision, ties
    )
    try:
        t0 = time.perf_counter()
        progress(f"building the reference: {reference}, from {source.path}")
        tf_runner = runner(source, plan)
        progress("running the reference")
        references = [tf_runner.run(batch) for batch in inputs.batches]
        seconds["tensorflow"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        torch_runs = torch_side.result()
        seconds["pytorch_wait"] = round(time.perf_counter() - t0, 3)
        seconds["pytorch"] = torch_runs.seconds
    finally:
        torch_side.close()
    runs = [
        (r, candidate, exact, b.flat_mask())
        for r, candidate, exact, b in zip(
            references, torch_runs.candidate, torch_runs.float64, inputs.batches, strict=True
        )
    ]
    diffs = compare_outputs(runs, gate)
    return ParityResult(
        passed=all(d.passed for d in diffs),
        gate=gate,
        reference=reference,
        diffs=diffs,
        inputs=inputs.describe(),
        versions=_versions(),
        source=str(source.path),
        output=str(published_as or out_dir),
        class_name=plan.class_name,
        seconds=seconds,
        not_compared=uncompared(runs),
    )
