"""The Python API: what `tf2pt convert`, `verify` and `doctor` do, as functions that return the
reports the command prints. The command line is a thin layer over these. (They live in
`converter.api`, not on the package itself, whose `convert`, `verify` and `doctor` are the
modules that do the work.)

    from converter.api import convert, doctor, verify

    result = convert("tf-checkpoint/", "pytorch-model/")      # raises on any failure
    result.report["counts"], result.parity.least_margin
    convert(src, out, settings={"hidden_act": "gelu_new"}, patches=["swap=q.weight,k.weight"])
    parity = verify("tf-checkpoint/", "pytorch-model/")       # a ParityResult; check .passed
    found = doctor("pytorch_model.bin", arch="bert", settings={"num_attention_heads": 12})

Expected failures raise the `converter.errors` classes (`Tf2ptError` and its subclasses), whose
`one_line()` is the message the command prints. Nothing here prints; pass `progress` to see the
progress lines.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError
from .pipeline import (
    DEFAULT_MAX_SHARD_BYTES,
    ConversionResult,
    ConvertOptions,
    parity_failed_dir,
)
from .pipeline import convert as _convert
from .plan.analysis import Analysis, open_with_table, plan_source
from .provenance import Patch, parse_patch
from .provenance.assumptions import value_text
from .write.dtypes import DEFAULT_DTYPE, output_dtype, stored_dtype

if TYPE_CHECKING:
    from .doctor import Examination
    from .verify.parity import ParityResult

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def _gate(atol: float | None, rtol: float | None):
    from .errors import UsageError
    from .verify.gate import Gate

    for name, value in (("atol", atol), ("rtol", rtol)):
        if value is not None and not value >= 0:
            raise UsageError(f"{name} must be a number ≥ 0, not {value}")
    return Gate(atol, rtol)


def convert(
    src: str | Path,
    out: str | Path,
    *,
    head: str | None = None,
    arch: str | None = None,
    num_labels: int | None = None,
    force: bool = False,
    verify: bool = True,
    atol: float | None = None,
    rtol: float | None = None,
    texts: tuple[str, ...] = (),
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    tokenizer: str | Path | None = None,
    tokenizer_style: str = "faithful",
    settings: dict[str, Any] | None = None,
    config: str | Path | None = None,
    patches: tuple[str | Patch, ...] | list[str | Patch] = (),
    dtype: str = DEFAULT_DTYPE,
    progress: Progress = _quiet,
    own_process: bool = False,
    diagnose: bool = True,
) -> ConversionResult:
    """Convert `src` into the directory `out` and (unless `verify=False`) prove parity.

    Returns the conversion report (and `.parity`, the ParityResult, when verified). Parity is
    judged against the noise measured in the output's `dtype` (float32, float16 or bfloat16: every
    floating tensor is written in it) unless `atol`/`rtol` fix the bounds. A parity failure
    raises ParityError and leaves its evidence in `<out>.parity-failed/`, with the known causes
    tried on the converted model (unless `diagnose=False`) and the best one in its hint.
    `settings` are values for the converted model's config (`--set`, transformers' terms; the
    TF reference takes only those replacing a value the table guessed, so parity tests the
    rest); `config` is a config file to read as the source's own (`--config`); `patches` are
    `--patch` fixes ("op=tensor[,tensor]"); `tokenizer_style` is "faithful" (the source's own
    tokenization) or "canonical" (the family's Hugging Face tokenizer).
    `own_process` is for the `tf2pt` command only (see verify/torch_side.py)."""
    options = ConvertOptions(
        head=head,
        arch=arch,
        num_labels=num_labels,
        force=force,
        max_shard_bytes=max_shard_bytes,
        tokenizer=Path(tokenizer) if tokenizer is not None else None,
        texts=tuple(texts),
        tokenizer_style=tokenizer_style,
        settings=dict(settings or {}),
        config_file=Path(config) if config is not None else None,
        patches=tuple(p if isinstance(p, Patch) else parse_patch(p) for p in patches),
        dtype=output_dtype(dtype).name,
    )
    gate = _gate(atol, rtol)
    results: list[ParityResult] = []

    def check(analysis: Analysis, staged: Path):
        from .report.parity import write_reports
        from .verify.parity import run_parity

        result = run_parity(
            analysis,
            staged,
            gate,
            texts,
            progress,
            published_as=Path(out),
            own_process=own_process,
            diagnose_failure=diagnose,
            fix_command=_fix_command(
                src,
                out,
                head=head,
                arch=arch,
                num_labels=num_labels,
                tokenizer=tokenizer,
                tokenizer_style=tokenizer_style,
                dtype=dtype,
                config=config,
                settings=settings,
                patches=patches,
            ),
        )
        if not result.passed:  # kept beside OUT, not as OUT
            result.output = str(parity_failed_dir(Path(out)))
        result.patches = [p.to_dict() for p in options.patches]
        write_reports(result, staged)
        progress(parity_line(result))
        results.append(result)
        return result.failure()

    converted = _convert(src, out, options, progress, check if verify else None)
    converted.parity = results[0] if results else None
    return converted


def verify(
    src: str | Path,
    out: str | Path,
    *,
    arch: str | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    texts: tuple[str, ...] = (),
    config: str | Path | None = None,
    progress: Progress = _quiet,
    own_process: bool = False,
    diagnose: bool = True,
) -> ParityResult:
    """Run `src`'s TF model and the converted model in `out` on the same inputs and compare;
    the reports are written into `out`; the tokenizers are compared too (`.tokenizer`). Returns
    the result whatever it says: `.failure()` is the error the command raises, if any; on a
    failure `.diagnosis` holds the known causes tried (unless `diagnose=False`).
    `config` is the source's config file when it is not beside the weights (`--config`); what
    the converted model assumed is read from `out`'s conversion_report.json."""
    from .report.parity import write_reports
    from .verify.parity import run_parity

    out = Path(out)
    gate = _gate(atol, rtol)
    try:
        out_config = json.loads((out / "config.json").read_text())
        class_name = out_config["architectures"][0]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        raise InputError(
            "not a converted model directory (no readable config.json with architectures)", out
        ) from None
    _check_stated_dtype(out, out_config)
    source, table = open_with_table(src, arch, Path(config) if config is not None else None)
    head = table.head_for_class(class_name)
    if head is None:
        raise InputError(f"{class_name} is not a {table.architecture} class", out)
    labels = out_config.get("id2label")
    analysis = plan_source(source, table, head=head, num_labels=len(labels) if labels else None)
    result = run_parity(
        analysis,
        out,
        gate,
        texts,
        progress,
        own_process=own_process,
        diagnose_failure=diagnose,
        fix_command=_fix_command(src, out, arch=arch, config=config),
    )
    _assumed_by_the_conversion(result, out)
    write_reports(result, out)
    result.tokenizer = _tokenizer_parity(source, out, texts, progress)
    return result


def _assumed_by_the_conversion(result: ParityResult, out: Path) -> None:
    """What OUT's config rests on is what its conversion assumed and was told (--set, --patch),
    as its conversion_report.json records; without one, what this analysis of the source
    assumes stands."""
    from .report.conversion import REPORT_FILE

    try:
        report = json.loads((out / REPORT_FILE).read_text())
        result.assumptions, result.patches = report["assumptions"], report["patches"]
    except (OSError, ValueError, KeyError, TypeError):
        pass


def _fix_command(src, out, **given: Any) -> str:
    """The `tf2pt convert` a diagnosis completes: SRC, OUT and the options the conversion was
    given (the diagnosis adds its own --set or --patch to them)."""
    from .verify.diagnosis_report import convert_command

    flags = {
        "head": "--head",
        "arch": "--arch",
        "num_labels": "--num-labels",
        "tokenizer": "--tokenizer",
        "config": "--config",
    }
    options = [f"{flags[k]} {shlex.quote(str(v))}" for k, v in given.items() if k in flags and v]
    if given.get("tokenizer_style") not in (None, "faithful"):
        options.append(f"--tokenizer-style {given['tokenizer_style']}")
    if given.get("dtype") not in (None, DEFAULT_DTYPE):
        options.append(f"--dtype {given['dtype']}")
    settings = given.get("settings") or {}
    options += [f"--set {shlex.quote(f'{k}={value_text(v)}')}" for k, v in settings.items()]
    patches = [p.text() if isinstance(p, Patch) else str(p) for p in given.get("patches") or ()]
    options += [f"--patch {shlex.quote(p)}" for p in patches]
    return convert_command(src, out, tuple(options))


def _check_stated_dtype(out: Path, out_config: dict[str, Any]) -> None:
    """config.json must name the dtype the weights are stored in: transformers 5 loads the model
    in the one it names."""
    from .write.output_config import DTYPE_KEYS

    stored = stored_dtype(out)
    for key in DTYPE_KEYS:
        if out_config.get(key) not in (None, stored):
            raise InputError(
                f'config.json says "{key}": "{out_config[key]}" but the weights are {stored}',
                out,
                f'set "{key}": "{stored}" in config.json',
            )


def _tokenizer_parity(source, out: Path, texts: tuple[str, ...], progress: Progress):
    """The source's tokenizer against OUT's, its section appended to parity_report.md."""
    from .tokenizers import append_markdown, verify_tokenizer

    result = verify_tokenizer(source, out, texts)
    if result is not None:
        append_markdown(out, result.markdown_lines())
        progress(
            f"tokenizer parity {'passed' if result.passed else 'FAILED'}: "
            f"{result.equal}/{result.rows} rows identical"
        )
    return result


@dataclass
class DoctorResult:
    """What `doctor` found, and the files `fix` wrote (empty when it was not asked to)."""

    examination: Examination
    written: list[str]

    @property
    def diagnosis(self):
        return self.examination.diagnosis


def doctor(
    ckpt: str | Path,
    *,
    model: str | Path | None = None,
    arch: str | None = None,
    head: str | None = None,
    num_labels: int | None = None,
    drop_head: bool = False,
    settings: dict[str, Any] | None = None,
    fix: str | Path | None = None,
    force: bool = False,
    accept_assumed: bool = False,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    progress: Progress = _quiet,
) -> DoctorResult:
    """Diagnose whether the PyTorch checkpoint `ckpt` loads into a transformers model, and with
    `fix` write a repaired copy (refused, raising, when the repair would lose weights or rests
    on a guessed config value not accepted)."""
    from .doctor import examine

    model_path = Path(model) if model is not None else None
    found = examine(
        Path(ckpt),
        model=model_path,
        arch=arch,
        head=head,
        num_labels=num_labels,
        drop_head=drop_head,
        overrides=dict(settings or {}),
    )
    written = []
    if fix is not None:
        written = repair(
            found,
            fix,
            force=force,
            accept_assumed=accept_assumed,
            model=model_path,
            max_shard_bytes=max_shard_bytes,
            progress=progress,
        )
    return DoctorResult(found, written)


def repair(
    examination: Examination,
    out: str | Path,
    *,
    force: bool = False,
    accept_assumed: bool = False,
    model: str | Path | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    progress: Progress = _quiet,
) -> list[str]:
    """Write the repair `doctor` found as a save_pretrained-style dir; returns the file names."""
    from .doctor.fix import write_fixed

    return write_fixed(
        examination.checkpoint,
        examination.target,
        examination.diagnosis,
        Path(out),
        force=force,
        max_shard_bytes=max_shard_bytes,
        model=Path(model) if model is not None else None,
        accept_assumed=accept_assumed,
        progress=progress,
    )


def parity_line(result: ParityResult) -> str:
    """The one-line verdict the command prints."""
    from .report.parity import margin_text

    margin = result.least_margin
    return (
        f"parity {'passed' if result.passed else 'FAILED'}: max abs diff "
        f"{result.max_abs_diff:.3g}; least margin "
        + ("∞ (exact)" if margin is None else margin_text(margin))
        + f" under {result.gate.short()}"
    )
