"""Orchestrates one conversion: read → choose table and head → account → write → report."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .configs import output_config, source_hf_config, source_notes, translation_notes
from .errors import AccountingError, InputError, ParityError, Tf2ptError
from .mapping import Table, select_table
from .model_card import CARD_FILE, write_model_card
from .ops import chain_apply, chain_source_rows
from .plan import Mapped, Plan, choose_head, enforce, resolve_dims
from .readers import Source, SourceTensor, open_source
from .readers.base import MALFORMED, Index
from .tokenizers import append_markdown, check_tokenizer, parity_failure, write_tokenizer
from .writer import StagedOutput, TensorJob, write_json, write_model

DEFAULT_MAX_SHARD_BYTES = 5 * 1000**3  # transformers' default max_shard_size of "5GB"
REPORT_FILE = "conversion_report.json"
PARITY_FAILED_SUFFIX = ".parity-failed"
BLOCK_BYTES = 16 * 2**20  # larger tensors are read, checked and written in row blocks

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
    config = source_hf_config(source, table)
    dims = resolve_dims(config, table, options.num_labels)
    plan = choose_head(source, table, dims, options.head)
    plan.notes += source_notes(source, table) + translation_notes(source, table, config)
    return Analysis(source, plan, config)


def analyse(src: str | Path, options: ConvertOptions) -> Analysis:
    return plan_source(*open_with_table(src, options.arch), options)


def _read(tensor: SourceTensor, index: Index = None) -> np.ndarray:
    try:
        return tensor.read(index)
    except MALFORMED as exc:
        raise InputError(
            f"cannot read tensor '{tensor.name}' ({exc})",
            tensor.origin,
            "the file is truncated or corrupt",
        ) from None


def _source_blocks(m: Mapped) -> list[Index]:
    """Source indices that produce the output in row blocks of about BLOCK_BYTES each, so a
    large tensor never sits in memory whole; [None] (read it whole) when it is small or its ops
    need the whole tensor."""
    nbytes = int(np.prod(m.shape)) * np.dtype(m.dtype).itemsize
    if nbytes <= BLOCK_BYTES or len(m.shape) < 2 or chain_source_rows(m.ops, slice(0, 1)) is None:
        return [None]
    rows = max(1, BLOCK_BYTES * m.shape[0] // nbytes)
    return [
        chain_source_rows(m.ops, slice(a, min(a + rows, m.shape[0])))
        for a in range(0, m.shape[0], rows)
    ]


def _mapped_jobs(analysis: Analysis, warnings: list[str]) -> list[TensorJob]:
    tensors = analysis.source.tensor_map()
    copies: dict[str, list[str]] = {}
    for dup in analysis.plan.duplicates:
        copies.setdefault(dup.same_as, []).append(dup.src)

    def produce(m) -> Iterator[np.ndarray]:
        bad = 0
        for index in _source_blocks(m):
            array = _read(tensors[m.src], index)
            for copy in copies.get(m.src, []):
                if not np.array_equal(array, _read(tensors[copy], index), equal_nan=True):
                    raise AccountingError(
                        f"stored copy '{copy}' differs from '{m.src}'",
                        analysis.source.path,
                        "the checkpoint is inconsistent; re-save it",
                    )
            bad += int(array.size - np.count_nonzero(np.isfinite(array)))
            yield chain_apply(m.ops, array)
        if bad:
            warnings.append(f"{m.src}: {bad} NaN/Inf value(s), converted as they are")

    return [
        TensorJob(m.dst, m.shape, np.dtype(m.dtype), lambda m=m: produce(m))
        for m in analysis.plan.mapped
    ]


def _synthesized_jobs(plan: Plan) -> list[TensorJob]:
    fills = {"zeros": np.zeros, "ones": np.ones}
    dtype = np.dtype(plan.mapped[0].dtype) if plan.mapped else np.dtype("<f4")
    return [
        TensorJob(s.dst, s.shape, dtype, lambda s=s: iter([fills[s.fill](s.shape, dtype=dtype)]))
        for s in plan.synthesized
    ]


def build_report(
    analysis: Analysis, files: list[str], config_notes: list[str], warnings: list[str]
) -> dict[str, Any]:
    source, plan = analysis.source, analysis.plan
    mapped = {m.src: m for m in plan.mapped}
    dups = {d.src: d for d in plan.duplicates}
    ignored = {i.src: i for i in plan.ignored}
    source_rows = []
    for t in source.tensors:
        row: dict[str, Any] = {"name": t.name, "shape": list(t.shape), "dtype": t.dtype.name}
        if t.name in mapped:
            row |= {
                "fate": "mapped",
                "target": mapped[t.name].dst,
                "ops": [o.describe() for o in mapped[t.name].ops],
            }
        elif t.name in dups:
            row |= {"fate": "duplicate", "same_as": dups[t.name].same_as, "checked": "equal"}
        else:
            row |= {"fate": "ignored", "reason": ignored[t.name].reason}
        source_rows.append(row)
    target_rows = (
        [
            {"name": m.dst, "shape": list(m.shape), "how": "produced", "from": m.src}
            for m in plan.mapped
        ]
        + [{"name": t.dst, "how": "tied", "same_as": t.same_as} for t in plan.tied]
        + [
            {
                "name": s.dst,
                "shape": list(s.shape),
                "how": "synthesized",
                "fill": s.fill,
                "reason": s.reason,
            }
            for s in plan.synthesized
        ]
    )
    return {
        "tool": {"name": "tf2pt", "version": __version__},
        "source": {
            "path": str(source.path),
            "layout": source.layout,
            "name_or_path": source.config.get("_name_or_path"),
            "weight_files": [p.name for p in source.weight_files],
            "tokenizer_files": [p.name for p in source.tokenizer_files],
        },
        "table": plan.table.name,
        "architecture": plan.table.architecture,
        "head": plan.head,
        "class": plan.class_name,
        "counts": {
            "source_tensors": len(source.tensors),
            "mapped": len(plan.mapped),
            "duplicates": len(plan.duplicates),
            "ignored": len(plan.ignored),
            "unexpected": len(plan.unexpected),
            "target_parameters": len(target_rows),
            "produced": len(plan.mapped),
            "tied": len(plan.tied),
            "synthesized": len(plan.synthesized),
            "missing": len(plan.missing),
            "parameters": int(
                sum(int(np.prod(m.shape)) for m in plan.mapped)
                + sum(int(np.prod(s.shape)) for s in plan.synthesized)
            ),
        },
        "source_tensors": sorted(source_rows, key=lambda r: r["name"]),
        "target_parameters": sorted(target_rows, key=lambda r: r["name"]),
        "notes": plan.notes + config_notes,
        "warnings": warnings,
        "output_files": sorted(files),
    }


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
    config, config_notes = output_config(analysis.config, plan)
    warnings: list[str] = []
    with staged:
        jobs = _mapped_jobs(analysis, warnings) + _synthesized_jobs(plan)
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
        max_length = plan.dims["max_position_embeddings"] - plan.table.position_offset
        tokenizer = write_tokenizer(source, staged.path, options.tokenizer, max_length)
        progress(f"note: {tokenizer.note()}")
        files += tokenizer.files + ["config.json", REPORT_FILE, CARD_FILE]
        report = build_report(analysis, files, config_notes, warnings)
        report["tokenizer"] = tokenizer.to_dict()
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
