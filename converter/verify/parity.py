"""Run both models on the same inputs and judge parity; the reports are written by report.py.

The TF reference runs in this process; the converted PyTorch model runs in the dtype its weights
are stored in and in float64 (torch_side.py), in a child process when that overlaps the two
frameworks' start-up. When parity fails, known causes are tried on the converted model against
the TF outputs already computed (diagnosis.py) before the PyTorch side is let go."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..capabilities import VERIFY, VERIFY_RUNNER_MODULES, require
from ..errors import ParityError, Tf2ptError, UsageError
from ..plan.accounting import Plan
from ..plan.analysis import Analysis
from ..tables.reference import feeds, runner_name
from ..write.dtypes import stored_dtype
from .compare import OutputDiff, compare_outputs, uncompared
from .diagnosis import DiagnosisRun, diagnose
from .diagnosis_report import convert_command, diagnosis_json, diagnosis_line, lead_line
from .gate import MEASURED_NOISE, Gate
from .inputs import ParityInputs, make_inputs
from .resolution import resolution
from .runners import Outputs, declared_runner
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
    # Where the table declares that the PyTorch class computes an output differently from the
    # source (keras-hub's masked-LM head): what differs and by how much the source's own
    # output is away from the one parity checked. Reported, never gated away silently.
    declared_deviations: list[dict[str, Any]] = field(default_factory=list)
    tokenizer: Any = None  # tokenizer parity (converter.tokenizers), when it was checked
    # What the converted model's config assumed and the user declared (provenance/), as dicts.
    assumptions: list[dict[str, Any]] = field(default_factory=list)
    patches: list[dict[str, Any]] = field(default_factory=list)
    diagnosis: DiagnosisRun | None = None  # hypotheses tried when parity failed
    fix_command: str = ""  # `tf2pt convert SRC OUT …`, completed by a diagnosis's options

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
            "declared_deviations": self.declared_deviations,
            "class": self.class_name,
            "dtype": self.precision,
            "resolution": resolution(self.precision),
            "reference": self.reference,
            "source": self.source,
            "output": self.output,
            "inputs": self.inputs,
            "versions": self.versions,
            "seconds": self.seconds,
            "assumptions": self.assumptions,
            "patches": self.patches,
            **diagnosis_json(self.diagnosis, self.fix_command),
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
        lead = lead_line(self.diagnosis, self.fix_command)
        return ParityError(
            f"parity failed: first divergence at {first.name} ({first.description}), "
            f"max abs diff {first.max_abs_diff:.3g} > tolerance {first.tolerance:.3g} "
            f"({self.gate.short()}, noise {first.noise:.3g})",
            self.output,
            f"{lead}; see parity_report.md" if lead else "see parity_report.md",
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


def parity_inputs(analysis: Analysis, texts: tuple[str, ...] = ()) -> ParityInputs:
    """The batches both models run: the table says the input shape and which fields are fed."""
    source, plan = analysis.source, analysis.plan
    return make_inputs(
        plan.dims,
        plan.table.position_offset,
        input_shape=plan.input_shape,
        token_types="token_type_ids" in feeds(plan.table.reference).values(),
        texts=texts,
        tokenizer_dir=source.tokenizer_files[0].parent if source.tokenizer_files else None,
    )


def run_parity(
    analysis: Analysis,
    out_dir: Path,
    gate: Gate = MEASURED_NOISE,
    texts: tuple[str, ...] = (),
    progress: Callable[[str], None] = lambda _: None,
    published_as: Path | None = None,
    own_process: bool = False,
    diagnose_failure: bool = True,
    fix_command: str | None = None,
) -> ParityResult:
    """Build the source TF model and the converted PyTorch model, run both, compare; on a
    failure (unless `diagnose_failure` is off) try the known causes on the PyTorch side.

    `own_process`: the caller (the CLI) owns this process, so the PyTorch half may run in a
    child process and this one may be configured to never import torch (torch_side.py).
    `fix_command`: the `tf2pt convert …` a fix is added to (default: SRC and OUT as given)."""
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
    inputs = parity_inputs(analysis, texts)
    seconds = {}
    output = published_as or out_dir
    fix_command = fix_command or convert_command(source.path, output)
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
        # The reference is the source as its own config says: --set values are the converted
        # model's (but for one replacing a table's guess, plan/analysis.py), so parity tests them.
        tf_runner = runner(source, dataclasses.replace(plan, dims=analysis.reference_dims))
        progress("running the reference")
        references = [tf_runner.run(batch) for batch in inputs.batches]
        deviations = getattr(tf_runner, "declared_deviations", list)()
        for deviation in deviations:
            progress(f"note: {deviation_line(deviation, plan.class_name)}")
        del tf_runner  # a diagnosis needs its outputs only
        seconds["tensorflow"] = round(time.perf_counter() - t0, 3)
        checked = check_converted(
            plan,
            out_dir,
            inputs,
            references,
            torch_side,
            gate,
            diagnose_failure,
            progress,
            fix_command,
        )
    finally:
        torch_side.close()
    return ParityResult(
        passed=all(d.passed for d in checked.diffs),
        gate=gate,
        reference=reference,
        diffs=checked.diffs,
        inputs=inputs.describe(),
        versions=_versions(),
        source=str(source.path),
        output=str(output),
        class_name=plan.class_name,
        seconds=seconds | checked.seconds,
        not_compared=checked.not_compared,
        diagnosis=checked.diagnosis,
        fix_command=fix_command,
        assumptions=[a.to_dict() for a in analysis.assumptions],
        declared_deviations=deviations,
    )


@dataclass
class Checked:
    """The converted model against the TF outputs: per-output diffs, and on a failure the
    known causes tried."""

    diffs: list[OutputDiff]
    not_compared: list[str]
    diagnosis: DiagnosisRun | None
    seconds: dict[str, float]


def check_converted(
    plan: Plan,
    out_dir: Path,
    inputs: ParityInputs,
    references: list[Outputs],
    torch_side: TorchSide,
    gate: Gate = MEASURED_NOISE,
    diagnose_failure: bool = True,
    progress: Callable[[str], None] = lambda _: None,
    fix_command: str = "",
) -> Checked:
    """The PyTorch half's runs (from `torch_side`, started on `inputs`) compared with the TF
    `references`; on a failure, the diagnosis, run on the PyTorch side before it is closed
    (the caller closes it). Tests reuse one TF run for many converted models this way."""
    seconds = {}
    t0 = time.perf_counter()
    torch_runs = torch_side.result()
    if not diagnose_failure:  # nothing more to ask of it: free its model before comparing
        torch_side.close()
    seconds["pytorch_wait"] = round(time.perf_counter() - t0, 3)
    seconds["pytorch"] = torch_runs.seconds
    runs = [
        (r, candidate, exact, b.flat_mask())
        for r, candidate, exact, b in zip(
            references, torch_runs.candidate, torch_runs.float64, inputs.batches, strict=True
        )
    ]
    diffs = compare_outputs(runs, gate)
    diagnosis = None
    if diagnose_failure and not all(d.passed for d in diffs):
        progress("parity failed: trying known causes on the converted model")
        t0 = time.perf_counter()
        try:
            diagnosis = diagnose(
                plan,
                json.loads((out_dir / "config.json").read_text()),
                diffs,
                set(inputs.batches[0].as_dict()),
                references,
                torch_side.try_trials,
            )
        except (Tf2ptError, RuntimeError) as exc:  # the failure itself still stands
            diagnosis = DiagnosisRun(error=str(exc).splitlines()[0])
        seconds["diagnosis"] = round(time.perf_counter() - t0, 3)
        progress(diagnosis_line(diagnosis, fix_command))
    return Checked(diffs, uncompared(runs), diagnosis, seconds)


def deviation_line(deviation: dict[str, Any], class_name: str) -> str:
    """One declared deviation as a sentence (progress line, parity_report.md)."""

    def facts(values: dict[str, Any]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(values.items()))

    return (
        f"declared deviation: {class_name} computes the source's {deviation['what']} with "
        f"{facts(deviation['target'])} where the source uses {facts(deviation['source'])} "
        f"(no transformers config gives both); parity checked the head as {class_name} "
        f"computes it, and the source's own {deviation['output']} differ from it by up to "
        f"{deviation['max_abs_diff']:.3g} (argmax agrees on {deviation['argmax_agreement']:.1%} "
        f"of {deviation['positions']} positions)"
    )
