"""The conversion pipeline: read → choose table and head → account → write → verify → publish.

Each stage lives in its own package; this module only runs them in order and stages the output."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ParityError, Tf2ptError
from .plan.analysis import Analysis, analyse
from .plan.enforce import enforce
from .provenance import Patch
from .provenance.patches import BY_USER, Step, patch_jobs, resolve_patches
from .report.conversion import REPORT_FILE, build_report
from .report.model_card import CARD_FILE, write_model_card
from .tables.config_keys import POSITIONS_KEY
from .tokenizers import (
    TokenizerOutcome,
    append_markdown,
    check_tokenizer,
    parity_failure,
    write_tokenizer,
)
from .write.dtypes import DEFAULT_DTYPE, output_dtype
from .write.model_files import write_json, write_model
from .write.output_config import output_config
from .write.staging import StagedOutput
from .write.tensor_jobs import mapped_jobs, synthesized_jobs

DEFAULT_MAX_SHARD_BYTES = 5 * 1000**3  # transformers' default max_shard_size of "5GB"
PARITY_FAILED_SUFFIX = ".parity-failed"

Progress = Callable[[str], None]
Verifier = Callable[[Analysis, Path], Tf2ptError | None]


@dataclass(frozen=True, kw_only=True)
class ConvertOptions:
    head: str | None = None
    arch: str | None = None
    num_labels: int | None = None
    force: bool = False
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES
    tokenizer: Path | None = None  # where the tokenizer is, when not beside the weights
    tokenizer_style: str = "faithful"  # or "canonical" (converter/tokenizers/rules.py)
    texts: tuple[str, ...] = ()  # extra text for tokenizer parity
    dtype: str = DEFAULT_DTYPE  # every floating tensor is written in it (write/dtypes.py)
    settings: dict[str, Any] = field(default_factory=dict)  # --set: the output config's values
    config_file: Path | None = None  # --config: the source's config, in place of its own
    patches: tuple[Patch, ...] = ()  # --patch: layout fixes applied to the converted tensors


@dataclass
class ConversionResult:
    out: Path
    report: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    parity: Any = None  # the ParityResult when the conversion was verified


@dataclass
class Written:
    """What the write step put into the staged directory."""

    report: dict[str, Any]  # conversion_report.json, as written
    tokenizer: TokenizerOutcome
    warnings: list[str]


def _plan(src: str | Path, options: ConvertOptions, progress: Progress) -> Analysis:
    """Read and plan the source; refuse an unclean plan; say what will be written."""
    analysis = analyse(
        src,
        head=options.head,
        arch=options.arch,
        num_labels=options.num_labels,
        config_file=options.config_file,
        settings=options.settings,
    )
    source, plan = analysis.source, analysis.plan
    enforce(source, plan)
    progress(
        f"{source.layout} {plan.table.architecture} → {plan.class_name}: "
        f"{len(plan.mapped)} tensors to write"
    )
    for note in plan.notes:
        progress(f"note: {note}")
    for assumption in analysis.assumptions:
        progress(assumption.line())
    return analysis


def _patch_steps(analysis: Analysis, options: ConvertOptions, progress: Progress) -> list[Step]:
    """The --patch steps on the tensors this plan writes, checked before anything is written."""
    plan = analysis.plan
    steps = resolve_patches(
        options.patches,
        {m.dst: m.shape for m in plan.mapped} | {s.dst: s.shape for s in plan.synthesized},
        {t.dst: t.same_as for t in plan.tied},
        plan.dims,
        plan.table.head_count_key,
    )
    for patch in options.patches:
        progress(f"declared patch {patch.text()} ({BY_USER})")
    return steps


def _write(
    analysis: Analysis,
    staged: Path,
    options: ConvertOptions,
    steps: list[Step],
    progress: Progress,
) -> Written:
    """Weights (with the --patch steps), config, extra files, tokenizer and
    conversion_report.json into `staged`."""
    source, plan = analysis.source, analysis.plan
    dtype = output_dtype(options.dtype)
    config, config_notes = output_config(analysis.config, plan, dtype.name)
    warnings: list[str] = []
    jobs = mapped_jobs(source, plan, warnings, dtype) + synthesized_jobs(plan, dtype)
    jobs = patch_jobs(jobs, steps)
    try:
        files = write_model(staged, jobs, options.max_shard_bytes)
    finally:
        source.close()
    for warning in warnings:  # said before parity, which may fail because of them
        progress(f"warning: {warning}")
    write_json(staged / "config.json", config)
    for f in source.extra_files:
        shutil.copyfile(f, staged / f.name)
        files.append(f.name)
    max_length = plan.dims[POSITIONS_KEY] - plan.table.position_offset
    tokenizer = write_tokenizer(
        source,
        staged,
        options.tokenizer,
        max_length,
        style=options.tokenizer_style,
        texts=options.texts,
    )
    for note in tokenizer.notes():
        progress(f"note: {note}")
    files += tokenizer.files + ["config.json", REPORT_FILE, CARD_FILE]
    report = build_report(source, plan, files, config_notes, warnings)
    report["assumptions"] = [a.to_dict() for a in analysis.assumptions]
    report["patches"] = [p.to_dict() for p in options.patches]
    report["tokenizer"] = tokenizer.to_dict()
    report["dtype"] = dtype.name
    write_json(staged / REPORT_FILE, report)
    return Written(report, tokenizer, warnings)


def _check_tokenizer(
    written: Written, staged: Path, texts: tuple[str, ...], out: Path, progress: Progress
) -> ParityError | None:
    """Tokenizer parity, recorded in conversion_report.json and parity_report.md; a mismatch
    is returned as the failure to raise, like a model-parity failure."""
    result = check_tokenizer(written.tokenizer, staged, texts)
    if result is None:
        return None
    written.report["tokenizer"]["parity"] = result.to_dict()
    write_json(staged / REPORT_FILE, written.report)
    append_markdown(staged, result.markdown_lines())
    progress(
        f"tokenizer parity {'passed' if result.passed else 'FAILED'}: "
        f"{result.equal}/{result.rows} rows identical"
    )
    return parity_failure(result, out)


def _verify(
    analysis: Analysis,
    written: Written,
    staged: Path,
    options: ConvertOptions,
    out: Path,
    verify: Verifier,
    progress: Progress,
) -> Tf2ptError | None:
    """Model parity, then tokenizer parity (recorded whatever the model's said)."""
    failure = verify(analysis, staged)
    tokenizer_failure = _check_tokenizer(written, staged, options.texts, out, progress)
    return failure or tokenizer_failure


def convert(
    src: str | Path,
    out: str | Path,
    options: ConvertOptions,
    progress: Progress = lambda _: None,
    verify: Verifier | None = None,
) -> ConversionResult:
    """Convert `src` into the directory `out`; with `verify`, check parity before publishing.

    A parity failure publishes nothing at `out`: a model that does not reproduce its source must
    not look like a result. The whole staged output (weights, config, reports) is kept for
    inspection as `<out>.parity-failed/` instead, replacing an earlier one, and the failure is
    raised naming it. A later successful conversion removes that stale diagnostic.
    """
    out = Path(out)
    staged = StagedOutput(out, options.force, progress)  # refuses an existing output first
    analysis = _plan(src, options, progress)
    steps = _patch_steps(analysis, options, progress)
    with staged:
        written = _write(analysis, staged.path, options, steps, progress)
        failure = None
        if verify is not None:
            failure = _verify(analysis, written, staged.path, options, out, verify, progress)
        write_model_card(staged.path, written.report)
        if failure is not None:
            aside = staged.set_aside(PARITY_FAILED_SUFFIX)
            raise ParityError(
                failure.what,
                aside,
                f"{out} was not written; the converted model is kept here for inspection: "
                f"{failure.hint}",
            )
        staged.commit()
    _remove_stale_failure(out, progress)
    return ConversionResult(out, written.report, written.warnings)


def _remove_stale_failure(out: Path, progress: Progress) -> None:
    stale = parity_failed_dir(out)
    if stale.is_dir():
        shutil.rmtree(stale)
        progress(f"removed {stale}, the diagnostic of an earlier failed conversion")


def parity_failed_dir(out: Path) -> Path:
    """Where a conversion that failed parity is kept for inspection."""
    return out.with_name(out.name + PARITY_FAILED_SUFFIX)
