"""The conversion pipeline: read → choose table and head → account → write → verify → publish.

Each stage lives in its own module; this one only runs them in order and stages the output."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .conversion_report import REPORT_FILE, build_report
from .enforce import enforce
from .errors import InputError, ParityError, Tf2ptError
from .model_card import CARD_FILE, write_model_card
from .output_config import output_config
from .plan import Plan, choose_head, resolve_dims
from .readers import Source, open_source
from .source_config import source_hf_config, source_notes, translation_notes
from .table_config import POSITIONS_KEY
from .tables import Table, select_table
from .tensor_jobs import mapped_jobs, synthesized_jobs
from .tokenizers import append_markdown, check_tokenizer, parity_failure, write_tokenizer
from .write.dtypes import DEFAULT_DTYPE, output_dtype
from .writer import StagedOutput, write_json, write_model

DEFAULT_MAX_SHARD_BYTES = 5 * 1000**3  # transformers' default max_shard_size of "5GB"
PARITY_FAILED_SUFFIX = ".parity-failed"

Progress = Callable[[str], None]


@dataclass
class ConvertOptions:
    head: str | None = None
    arch: str | None = None
    num_labels: int | None = None
    force: bool = False
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES
    tokenizer: Path | None = None  # where the tokenizer is, when not beside the weights
    texts: tuple[str, ...] = ()  # extra text for tokenizer parity
    dtype: str = DEFAULT_DTYPE  # every floating tensor is written in it (write/dtypes.py)


@dataclass
class Analysis:
    """A source with its table and accounting plan: everything but the bytes."""

    source: Source
    plan: Plan
    config: dict[str, Any]  # the source config in transformers' terms (before table defaults)


@dataclass
class ConversionResult:
    out: Path
    report: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    parity: Any = None  # the ParityResult when the conversion was verified


def open_with_table(src: str | Path, arch: str | None) -> tuple[Source, Table]:
    """The source (tensor list, no data) and the mapping table for its layout and architecture."""
    source = open_source(src)
    names = [t.name for t in source.tensors]
    return source, select_table(source.layout, source.config.get("model_type"), arch, names)


def plan_source(source: Source, table: Table, options: ConvertOptions) -> Analysis:
    if table.requires_config and source.config_path is None:
        raise InputError(
            f"no {table.requires_config} next to the {source.layout} checkpoint",
            source.path,
            f"{table.description} ships one; copy it next to the checkpoint",
        )
    config = source_hf_config(source, table, options.head)
    dims = resolve_dims(config, table, options.num_labels)
    plan = choose_head(source, table, dims, options.head)
    plan.notes += source_notes(source, table) + translation_notes(
        source, table, config, options.head
    )
    return Analysis(source, plan, config)


def analyse(src: str | Path, options: ConvertOptions) -> Analysis:
    return plan_source(*open_with_table(src, options.arch), options)


def _check_tokenizer(
    tokenizer, staged: Path, texts, report, out, progress: Progress
) -> ParityError | None:
    """Tokenizer parity, recorded in conversion_report.json and parity_report.md; a mismatch
    is returned as the failure to raise, like a model-parity failure."""
    result = check_tokenizer(tokenizer, staged, texts)
    if result is None:
        return None
    report["tokenizer"]["parity"] = result.to_dict()
    write_json(staged / REPORT_FILE, report)
    append_markdown(staged, result.markdown_lines())
    progress(
        f"tokenizer parity {'passed' if result.passed else 'FAILED'}: "
        f"{result.equal}/{result.rows} rows identical"
    )
    return parity_failure(result, Path(out))


def convert(
    src: str | Path,
    out: str | Path,
    options: ConvertOptions,
    progress: Progress = lambda _: None,
    verify: Callable[[Analysis, Path], Tf2ptError | None] | None = None,
) -> ConversionResult:
    """Convert `src` into the directory `out`; with `verify`, check parity before publishing.

    A parity failure publishes nothing at `out`: a model that does not reproduce its source must
    not look like a result. The whole staged output (weights, config, reports) is kept for
    inspection as `<out>.parity-failed/` instead, replacing an earlier one, and the failure is
    raised naming it. A later successful conversion removes that stale diagnostic.
    """
    # Refuses an existing output before any work.
    staged = StagedOutput(out, options.force, progress)
    analysis = analyse(src, options)
    source, plan = analysis.source, analysis.plan
    enforce(source, plan)
    progress(
        f"{source.layout} {plan.table.architecture} → {plan.class_name}: "
        f"{len(plan.mapped)} tensors to write"
    )
    for note in plan.notes:
        progress(f"note: {note}")
    dtype = output_dtype(options.dtype)
    config, config_notes = output_config(analysis.config, plan, dtype.name)
    warnings: list[str] = []
    with staged:
        jobs = mapped_jobs(source, plan, warnings, dtype) + synthesized_jobs(plan, dtype)
        try:
            files = write_model(staged.path, jobs, options.max_shard_bytes)
        finally:
            source.close()
        for warning in warnings:  # said before parity, which may fail because of them
            progress(f"warning: {warning}")
        write_json(staged.path / "config.json", config)
        for f in source.extra_files:
            shutil.copyfile(f, staged.path / f.name)
            files.append(f.name)
        max_length = plan.dims[POSITIONS_KEY] - plan.table.position_offset
        tokenizer = write_tokenizer(source, staged.path, options.tokenizer, max_length)
        progress(f"note: {tokenizer.note()}")
        files += tokenizer.files + ["config.json", REPORT_FILE, CARD_FILE]
        report = build_report(source, plan, files, config_notes, warnings)
        report["tokenizer"] = tokenizer.to_dict()
        report["dtype"] = dtype.name
        write_json(staged.path / REPORT_FILE, report)
        failure = verify(analysis, staged.path) if verify is not None else None
        if verify is not None:  # tokenizer parity, recorded whatever the model's said
            tokenizer_failure = _check_tokenizer(
                tokenizer, staged.path, options.texts, report, out, progress
            )
            failure = failure or tokenizer_failure
        write_model_card(staged.path, report)
        if failure is not None:
            aside = staged.set_aside(PARITY_FAILED_SUFFIX)
            raise ParityError(
                failure.what,
                aside,
                f"{out} was not written; the converted model is kept here for inspection: "
                f"{failure.hint}",
            )
        staged.commit()
    stale = parity_failed_dir(Path(out))
    if stale.is_dir():
        shutil.rmtree(stale)
        progress(f"removed {stale}, the diagnostic of an earlier failed conversion")
    return ConversionResult(Path(out), report, warnings)


def parity_failed_dir(out: Path) -> Path:
    """Where a conversion that failed parity is kept for inspection."""
    return out.with_name(out.name + PARITY_FAILED_SUFFIX)
