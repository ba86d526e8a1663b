"""The plan's targets as writer jobs: each streams its source tensor through its ops, in row
blocks when it is large, checking stored copies against the tensor they duplicate, and casts
floating values to the output dtype (write/dtypes.py)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..errors import AccountingError, InputError
from ..plan.accounting import Mapped, Plan
from ..readers import Source, SourceTensor
from ..readers.base import MALFORMED, Index
from ..tables.ops import chain_apply, chain_source_rows
from .dtypes import DEFAULT_DTYPE, OUTPUT_DTYPES, OutputDtype, is_floating, nonfinite
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


def _job(name: str, shape, source_dtype: np.dtype, dtype: OutputDtype, produce) -> TensorJob:
    """A floating tensor is written in the output dtype, anything else as it is stored."""
    if not is_floating(source_dtype):
        return TensorJob(name, shape, source_dtype, produce)
    return TensorJob(name, shape, dtype.storage, produce, dtype.safetensors)


def mapped_jobs(
    source: Source,
    plan: Plan,
    warnings: list[str],
    dtype: OutputDtype = OUTPUT_DTYPES[DEFAULT_DTYPE],
) -> list[TensorJob]:
    """A job per mapped target; NaN/Inf counts are appended to `warnings` as they are read."""
    tensors = source.tensor_map()
    copies: dict[str, list[str]] = {}
    for dup in plan.duplicates:
        copies.setdefault(dup.same_as, []).append(dup.src)

    def produce(m: Mapped) -> Iterator[np.ndarray]:
        bad = overflowed = 0
        for index in _source_blocks(m):
            array = _read(tensors[m.src], index)
            for copy in copies.get(m.src, []):
                if not np.array_equal(array, _read(tensors[copy], index), equal_nan=True):
                    raise AccountingError(
                        f"stored copy '{copy}' differs from '{m.src}'",
                        source.path,
                        "the checkpoint is inconsistent; re-save it",
                    )
            if is_floating(array.dtype):
                stored_bad = nonfinite(array)
                cast = dtype.cast(array)
                if cast is not array:  # a rounding cast: count what went beyond its range
                    overflowed += nonfinite(cast) - stored_bad
                bad += stored_bad
                array = cast
            yield chain_apply(m.ops, array)
        if bad:
            warnings.append(f"{m.src}: {bad} NaN/Inf value(s), converted as they are")
        if overflowed:
            warnings.append(
                f"{m.src}: {overflowed} value(s) beyond {dtype.name}'s range, written as ±inf"
            )

    return [
        _job(m.dst, m.shape, tensors[m.src].dtype, dtype, lambda m=m: produce(m))
        for m in plan.mapped
    ]


def synthesized_jobs(
    plan: Plan, dtype: OutputDtype = OUTPUT_DTYPES[DEFAULT_DTYPE]
) -> list[TensorJob]:
    """A job per synthesized target (a floating fill), in the output dtype."""
    return [
        _job(
            s.dst,
            s.shape,
            np.dtype("<f4"),
            dtype,
            lambda s=s: iter([dtype.cast(FILLS[s.fill](s.shape, dtype=np.float32))]),
        )
        for s in plan.synthesized
    ]
