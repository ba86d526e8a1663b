"""The plan's targets as writer jobs: each streams its source tensor through its ops, in row
blocks when it is large, checking stored copies against the tensor they duplicate."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..errors import AccountingError, InputError
from ..plan.accounting import Mapped, Plan
from ..readers import Source, SourceTensor
from ..readers.base import MALFORMED, Index
from ..tables.ops import chain_apply, chain_source_rows
from .model_files import TensorJob

BLOCK_BYTES = 16 * 2**20  # larger tensors are read, checked and written in row blocks
FILLS = {"zeros": np.zeros, "ones": np.ones}


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


def mapped_jobs(source: Source, plan: Plan, warnings: list[str]) -> list[TensorJob]:
    """A job per mapped target; NaN/Inf counts are appended to `warnings` as they are read."""
    tensors = source.tensor_map()
    copies: dict[str, list[str]] = {}
    for dup in plan.duplicates:
        copies.setdefault(dup.same_as, []).append(dup.src)

    def produce(m: Mapped) -> Iterator[np.ndarray]:
        bad = 0
        for index in _source_blocks(m):
            array = _read(tensors[m.src], index)
            for copy in copies.get(m.src, []):
                if not np.array_equal(array, _read(tensors[copy], index), equal_nan=True):
                    raise AccountingError(
                        f"stored copy '{copy}' differs from '{m.src}'",
                        source.path,
                        "the checkpoint is inconsistent; re-save it",
                    )
            bad += int(array.size - np.count_nonzero(np.isfinite(array)))
            yield chain_apply(m.ops, array)
        if bad:
            warnings.append(f"{m.src}: {bad} NaN/Inf value(s), converted as they are")

    return [
        TensorJob(m.dst, m.shape, np.dtype(m.dtype), lambda m=m: produce(m)) for m in plan.mapped
    ]


def synthesized_jobs(plan: Plan) -> list[TensorJob]:
    """A job per synthesized target, in the dtype of the mapped ones."""
    dtype = np.dtype(plan.mapped[0].dtype) if plan.mapped else np.dtype("<f4")
    return [
        TensorJob(s.dst, s.shape, dtype, lambda s=s: iter([FILLS[s.fill](s.shape, dtype=dtype)]))
        for s in plan.synthesized
    ]
