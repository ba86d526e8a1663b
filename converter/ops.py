"""Tensor operations a mapping rule may declare, each a small named class that knows its inverse.

An op maps a source array to its PyTorch layout and predicts the resulting shape without data, so
the whole conversion can be planned (and shape-checked) before a single byte is read. No op ever
reshapes to "make it fit": each one asserts the input shape it was written for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

Shape = tuple[int, ...]


class OpShapeError(ValueError):
    """The op cannot apply to a tensor of this shape (reported as a shape mismatch)."""


@dataclass(frozen=True)
class Op:
    name: ClassVar[str]

    def out_shape(self, shape: Shape) -> Shape:
        raise NotImplementedError

    def apply(self, array: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def inverse(self) -> Op:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name

    def source_rows(self, rows: slice) -> tuple[slice, ...] | None:
        """The part of the input that becomes output rows `rows`, if the op can stream by rows."""
        return None


@dataclass(frozen=True)
class Transpose(Op):
    """Keras Dense kernels are [in, out]; torch.nn.Linear weights are [out, in]."""

    name: ClassVar[str] = "transpose"

    def out_shape(self, shape: Shape) -> Shape:
        if len(shape) != 2:
            raise OpShapeError(f"transpose needs a 2-D tensor, got shape {list(shape)}")
        return (shape[1], shape[0])

    def apply(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array.T)

    def inverse(self) -> Op:
        return self

    def source_rows(self, rows: slice) -> tuple[slice, ...] | None:
        return (slice(None), rows)  # output rows are input columns


@dataclass(frozen=True)
class MergeHeadsIn(Op):
    """EinsumDense q/k/v kernel [hidden, heads, head_dim] → Linear [heads*head_dim, hidden]."""

    name: ClassVar[str] = "merge_heads_in"

    def out_shape(self, shape: Shape) -> Shape:
        if len(shape) != 3:
            raise OpShapeError(f"merge_heads_in needs [hidden, heads, head_dim], got {list(shape)}")
        return (shape[1] * shape[2], shape[0])

    def apply(self, array: np.ndarray) -> np.ndarray:
        hidden = array.shape[0]
        return np.ascontiguousarray(array.reshape(hidden, -1).T)

    def inverse(self) -> Op:
        return SplitHeadsIn()


@dataclass(frozen=True)
class SplitHeadsIn(Op):
    """Inverse of MergeHeadsIn; needs the head count, so it is applied with `heads` bound."""

    name: ClassVar[str] = "split_heads_in"
    heads: int = 0

    def out_shape(self, shape: Shape) -> Shape:
        if len(shape) != 2 or not self.heads or shape[0] % self.heads:
            raise OpShapeError(f"split_heads_in({self.heads}) cannot split shape {list(shape)}")
        return (shape[1], self.heads, shape[0] // self.heads)

    def apply(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array.T.reshape(self.out_shape(array.shape)))

    def inverse(self) -> Op:
        return MergeHeadsIn()


@dataclass(frozen=True)
class MergeHeadsOut(Op):
    """EinsumDense output kernel [heads, head_dim, hidden] → Linear [hidden, heads*head_dim]."""

    name: ClassVar[str] = "merge_heads_out"

    def out_shape(self, shape: Shape) -> Shape:
        if len(shape) != 3:
            raise OpShapeError(
                f"merge_heads_out needs [heads, head_dim, hidden], got {list(shape)}"
            )
        return (shape[2], shape[0] * shape[1])

    def apply(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array.reshape(-1, array.shape[2]).T)

    def inverse(self) -> Op:
        return Transpose()  # [hidden, heads*head_dim] → [heads*head_dim, hidden]; split is a view


@dataclass(frozen=True)
class Flatten(Op):
    """EinsumDense bias [heads, head_dim] → Linear bias [heads*head_dim]."""

    name: ClassVar[str] = "flatten"

    def out_shape(self, shape: Shape) -> Shape:
        if len(shape) < 1:
            raise OpShapeError("flatten needs at least a 1-D tensor")
        return (int(np.prod(shape)),)

    def apply(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array.reshape(-1))

    def inverse(self) -> Op:
        return self  # the inverse reshape is fixed by the source shape, which the caller knows


@dataclass(frozen=True)
class PrependRows(Op):
    """Insert `rows` rows of `fill` before row 0 (keras-hub RoBERTa drops the 2 pad positions)."""

    name: ClassVar[str] = "prepend_rows"
    rows: int = 0
    fill: str = "zeros"

    def out_shape(self, shape: Shape) -> Shape:
        if len(shape) != 2:
            raise OpShapeError(f"prepend_rows needs a 2-D tensor, got {list(shape)}")
        return (shape[0] + self.rows, shape[1])

    def apply(self, array: np.ndarray) -> np.ndarray:
        pad = np.zeros((self.rows, array.shape[1]), dtype=array.dtype)
        return np.concatenate([pad, array], axis=0)

    def inverse(self) -> Op:
        return DropRows(rows=self.rows)

    def describe(self) -> str:
        return f"prepend_rows({self.rows}, {self.fill})"


@dataclass(frozen=True)
class DropRows(Op):
    name: ClassVar[str] = "drop_rows"
    rows: int = 0

    def out_shape(self, shape: Shape) -> Shape:
        if len(shape) != 2 or shape[0] < self.rows:
            raise OpShapeError(f"drop_rows({self.rows}) cannot apply to {list(shape)}")
        return (shape[0] - self.rows, shape[1])

    def apply(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array[self.rows :])

    def inverse(self) -> Op:
        return PrependRows(rows=self.rows)


OPS: dict[str, type[Op]] = {
    cls.name: cls
    for cls in (
        Transpose,
        MergeHeadsIn,
        SplitHeadsIn,
        MergeHeadsOut,
        Flatten,
        PrependRows,
        DropRows,
    )
}


def build_op(spec: Any) -> Op:
    """`"transpose"` or `{"prepend_rows": {"rows": 2}}` → an Op instance; unknown names fail."""
    if isinstance(spec, str):
        name, args = spec, {}
    elif isinstance(spec, dict) and len(spec) == 1:
        name, args = next(iter(spec.items()))
        args = args or {}
    else:
        raise ValueError(f"an op is a name or a one-key mapping, got {spec!r}")
    if name not in OPS:
        raise ValueError(f"unknown op '{name}' (known: {', '.join(sorted(OPS))})")
    try:
        return OPS[name](**args)
    except TypeError as exc:
        raise ValueError(f"bad arguments for op '{name}': {exc}") from None


def chain_shape(ops: tuple[Op, ...], shape: Shape) -> Shape:
    for op in ops:
        shape = op.out_shape(shape)
    return shape


def chain_source_rows(ops: tuple[Op, ...], rows: slice) -> tuple[slice, ...] | None:
    """Where output rows `rows` come from in the source, or None if the chain must see it whole."""
    if not ops:
        return (rows,)
    return ops[0].source_rows(rows) if len(ops) == 1 else None


def chain_apply(ops: tuple[Op, ...], array: np.ndarray) -> np.ndarray:
    for op in ops:
        array = op.apply(array)
    return np.ascontiguousarray(array)
