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

from ..errors import AccountingError, InputError
from ..ops import chain_apply
from ..staging import Progress
from ..writer import SAFETENSORS_DTYPES, StagedOutput, TensorJob, write_json, write_model
from .checkpoint import Checkpoint, StoredTensor
from .diagnose import LOSSY, Diagnosis
from .target import Target, transformers_without_tf

REPORT_FILE = "doctor_report.json"
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
        if fate.fate not in ("as-is", "repaired"):
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


def write_fixed(
    checkpoint: Checkpoint,
    target: Target,
    diagnosis: Diagnosis,
    out: Path,
    force: bool,
    max_shard_bytes: int,
    progress: Progress | None = None,
) -> list[str]:
    """Write `out`; refuses (nothing written) when the repair would lose weights."""
    staged = StagedOutput(out, force, progress)  # refuses an existing output before any work
    if diagnosis.verdict == LOSSY:
        raise AccountingError(
            f"not writing a repaired checkpoint: it {LOSSY}",
            checkpoint.path,
            "see the diagnosis above; --num-labels N or --drop-head make the head explicit",
        )
    with staged:
        jobs = _checkpoint_jobs(checkpoint, target, diagnosis)
        jobs += _reinitialised_jobs(target, diagnosis.reinitialised)
        files = write_model(staged.path, jobs, max_shard_bytes)
        write_json(staged.path / "config.json", target.config)
        for f in checkpoint.side_files:
            shutil.copyfile(f, staged.path / f.name)
            files.append(f.name)
        files += ["config.json", REPORT_FILE]
        write_json(staged.path / REPORT_FILE, diagnosis.to_dict() | {"output_files": files})
        staged.commit()
    return sorted(files)
