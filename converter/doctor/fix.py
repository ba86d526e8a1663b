"""`--fix`: write the repaired checkpoint as a save_pretrained-style directory, atomically.

Only a diagnosis that loses nothing is written. Each tensor is read from the checkpoint, passed
through its repair's ops and written under its model key, one at a time; tied keys are written
once (as save_pretrained does); parameters re-initialised by `--drop-head` come from a real,
seeded instance of the model, so they carry transformers' own initialisation.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import AccountingError, ConfigConflictError, InputError
from ..plan.fates import SourceFate
from ..readers.base import EXTRA_FILE_NAMES, SAFETENSORS_DTYPES, TOKENIZER_FILE_NAMES, sibling_files
from ..tables.ops import chain_apply
from ..tokenizers.release import release_tokenizer
from ..write.model_files import TensorJob, write_json, write_model
from ..write.staging import Progress, StagedOutput
from .checkpoint import Checkpoint, StoredTensor
from .diagnose import ASSUMED, LOSSY, Diagnosis
from .target import Target, transformers_without_tf

REPORT_FILE = "doctor_report.json"
# Keys written as they load; a tied key is not: its parameter is written once, by its owner.
WRITTEN = (SourceFate.AS_IS, SourceFate.REPAIRED)
REINIT_SEED = 0
WRITABLE_DTYPES = {np.dtype(key).name for key in SAFETENSORS_DTYPES}


def _numpy_dtype(tensor: StoredTensor, where: Path) -> np.dtype:
    """The tensor's dtype, if the writer can store it (bfloat16, for one, it cannot)."""
    if tensor.dtype not in WRITABLE_DTYPES:
        raise InputError(
            f"tensor '{tensor.name}' is {tensor.dtype}, which --fix cannot write yet",
            where,
            hint="convert the checkpoint to float32 first",
        )
    return np.dtype(tensor.dtype)


def _checkpoint_jobs(
    checkpoint: Checkpoint, target: Target, diagnosis: Diagnosis
) -> list[TensorJob]:
    jobs = []
    for fate in diagnosis.keys:
        if fate.fate not in WRITTEN:
            continue
        tensor = checkpoint.tensors[fate.key]
        ops = diagnosis.ops[fate.key]

        def produce(tensor=tensor, ops=ops) -> Iterator[np.ndarray]:
            yield chain_apply(ops, tensor.load())

        shape = target.params[fate.target]  # the diagnosis checked the ops produce it
        jobs.append(TensorJob(fate.target, shape, _numpy_dtype(tensor, checkpoint.path), produce))
    return jobs


def _reinitialised_jobs(target: Target, keys: list[str]) -> list[TensorJob]:
    """Fresh values for `--drop-head`, drawn by the model's own init with a fixed seed."""
    if not keys:
        return []
    import torch

    transformers = transformers_without_tf()
    torch.manual_seed(REINIT_SEED)
    config = transformers.AutoConfig.for_model(**target.config)
    state = getattr(transformers, target.class_name)(config).state_dict()
    jobs = []
    for key in keys:
        array = state[key].detach().numpy().copy()
        jobs.append(TensorJob(key, array.shape, array.dtype, lambda a=array: iter([a])))
    return jobs


def _synthesized_jobs(target: Target, synthesized: dict[str, tuple[str, str]]) -> list[TensorJob]:
    """Parameters the layout's table declares have no source tensor (zeros or ones)."""
    jobs = []
    for key, (fill, _) in synthesized.items():
        shape = target.params[key]
        array = (np.ones if fill == "ones" else np.zeros)(shape, dtype=np.float32)
        jobs.append(TensorJob(key, shape, array.dtype, lambda a=array: iter([a])))
    return jobs


def side_files(checkpoint: Checkpoint, model: Path | None) -> list[Path]:
    """Tokenizer and extra files to copy: beside CKPT, then from --model's directory for the
    names CKPT's directory lacks (the weights' own files win)."""
    files = {f.name: f for f in checkpoint.side_files}
    if model is not None and model.is_dir():
        for f in sibling_files(model, TOKENIZER_FILE_NAMES + EXTRA_FILE_NAMES):
            files.setdefault(f.name, f)
    return list(files.values())


def write_fixed(
    checkpoint: Checkpoint,
    target: Target,
    diagnosis: Diagnosis,
    out: Path,
    *,
    force: bool,
    max_shard_bytes: int,
    model: Path | None = None,
    accept_assumed: bool = False,
    progress: Progress | None = None,
) -> list[str]:
    """Write `out`; refuses (nothing written) when the repair would lose weights, or rests on a
    guessed config value the user has not accepted."""
    staged = StagedOutput(out, force, progress)  # refuses an existing output before any work
    if diagnosis.verdict == LOSSY:
        raise AccountingError(
            f"not writing a repaired checkpoint: it {LOSSY}",
            checkpoint.path,
            "see the diagnosis above; --num-labels N or --drop-head make the head explicit",
        )
    if diagnosis.assumed and not accept_assumed:
        keys = sorted(diagnosis.assumed)
        raise ConfigConflictError(
            f"not writing a repaired checkpoint: it {ASSUMED} ({', '.join(keys)})",
            checkpoint.path,
            f"pass --model DIR_OR_CONFIG or --set {keys[0]}=VALUE (each of {', '.join(keys)}), "
            "or --accept-assumed to write it anyway",
        )
    with staged:
        jobs = _checkpoint_jobs(checkpoint, target, diagnosis)
        jobs += _reinitialised_jobs(target, diagnosis.reinitialised)
        jobs += _synthesized_jobs(target, diagnosis.synthesized)
        files = write_model(staged.path, jobs, max_shard_bytes)
        write_json(staged.path / "config.json", target.minimal_config)
        side = side_files(checkpoint, model)
        tokenizer = release_tokenizer(side, staged.path, target.minimal_config, out)
        for f in side:
            if f.name not in tokenizer.consumed:
                shutil.copyfile(f, staged.path / f.name)
                files.append(f.name)
        files += tokenizer.files + ["config.json", REPORT_FILE]
        extra = {"tokenizer": tokenizer.report} if tokenizer.report else {}
        write_json(staged.path / REPORT_FILE, diagnosis.to_dict() | {"output_files": files} | extra)
        for note in tokenizer.notes:
            if progress is not None:
                progress(f"note: {note}")
        if tokenizer.failure is not None:
            raise tokenizer.failure
        staged.commit()
    return sorted(files)
