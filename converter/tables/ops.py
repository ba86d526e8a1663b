"""Tensor operations a mapping rule may declare, each a small named class that knows its inverse.

An op maps a source array to its PyTorch layout and predicts the resulting shape without data, so
the whole conversion can be planned (and shape-checked) before a single byte is read. No op ever
reshapes to "make it fit": each one checks the input rank it was written for. `inverse(shape)`
returns the ops that turn the output back into a source of that shape (PyTorch → TF direction).
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

    def inverse(self, shape: Shape) -> tuple[Op, ...]:
        """Ops that map this op's output back to an input of `shape`."""
        raise NotImplementedError

    def describe(self) -> str:
        return self.name

    def source_rows(self, rows: slice) -> tuple[slice, ...] | None:
        """The part of the input that becomes output rows `rows`, if the op can stream by rows."""
        return None

    def _need_rank(self, shape: Shape, rank: int, layout: str) -> None:
        if len(shape) != rank:
            raise OpShapeError(f"{self.name} needs {layout}, got shape {list(shape)}")


@dataclass(frozen=True)
class Transpose(Op):
    """Keras Dense kernels are [in, out]; torch.nn.Linear weights are [out, in]."""

    name: ClassVar[str] = "transpose"

    def out_shape(self, shape: Shape) -> Shape:
        self._need_rank(shape, 2, "a 2-D tensor")
        return (shape[1], shape[0])

    def apply(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array.T)

    def inverse(self, shape: Shape) -> tuple[Op, ...]:
        return (self,)

    def source_rows(self, rows: slice) -> tuple[slice, ...] | None:
        return (slice(None), rows)  # output rows are input columns


@dataclass(frozen=True)
class Reshape(Op):
    """Only ever produced by `inverse` (tables never reshape): back to a known source shape."""

    name: ClassVar[str] = "reshape"
    shape: Shape = ()

    def out_shape(self, shape: Shape) -> Shape:
        if int(np.prod(shape)) != int(np.prod(self.shape)):
            raise OpShapeError(f"cannot reshape {list(shape)} to {list(self.shape)}")
        return self.shape

    def apply(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array.reshape(self.out_shape(array.shape)))

    def inverse(self, shape: Shape) -> tuple[Op, ...]:
        return (Reshape(tuple(shape)),)


@dataclass(frozen=True)
class MergeHeadsIn(Op):
    """EinsumDense q/k/v kernel [hidden, heads, head_dim] → Linear [heads*head_dim, hidden]."""

    name: ClassVar[str] = "merge_heads_in"

    def out_shape(self, shape: Shape) -> Shape:
        self._need_rank(shape, 3, "[hidden, heads, head_dim]")
        return (shape[1] * shape[2], shape[0])

    def apply(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array.reshape(array.shape[0], -1).T)

    def inverse(self, shape: Shape) -> tuple[Op, ...]:
        return (Transpose(), Reshape(tuple(shape)))


@dataclass(frozen=True)
class MergeHeadsOut(Op):
    """EinsumDense output kernel [heads, head_dim, hidden] → Linear [hidden, heads*head_dim]."""

    name: ClassVar[str] = "merge_heads_out"

    def out_shape(self, shape: Shape) -> Shape:
        self._need_rank(shape, 3, "[heads, head_dim, hidden]")
        return (shape[2], shape[0] * shape[1])

    def apply(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array.reshape(-1, array.shape[2]).T)

    def inverse(self, shape: Shape) -> tuple[Op, ...]:
        return (Transpose(), Reshape(tuple(shape)))


@dataclass(frozen=True)
class Flatten(Op):
    """EinsumDense bias [heads, head_dim] → Linear bias [heads*head_dim]."""

    name: ClassVar[str] = "flatten"

    def out_shape(self, shape: Shape) -> Shape:
        self._need_rank(shape, 2, "[heads, head_dim]")
        return (shape[0] * shape[1],)

    def apply(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array.reshape(-1))

    def inverse(self, shape: Shape) -> tuple[Op, ...]:
        return (Reshape(tuple(shape)),)


@dataclass(frozen=True)
class PrependRows(Op):
    """Insert `rows` zero rows before row 0 (keras-hub RoBERTa drops the 2 pad positions)."""

    name: ClassVar[str] = "prepend_rows"
    rows: int = 0

    def out_shape(self, shape: Shape) -> Shape:
        self._need_rank(shape, 2, "a 2-D tensor")
        return (shape[0] + self.rows, shape[1])

    def apply(self, array: np.ndarray) -> np.ndarray:
        pad = np.zeros((self.rows, array.shape[1]), dtype=array.dtype)
        return np.concatenate([pad, array], axis=0)

    def inverse(self, shape: Shape) -> tuple[Op, ...]:
        return (DropRows(rows=self.rows),)

    def describe(self) -> str:
        return f"prepend_rows({self.rows})"


@dataclass(frozen=True)
class DropRows(Op):
    name: ClassVar[str] = "drop_rows"
    rows: int = 0

    def out_shape(self, shape: Shape) -> Shape:
        self._need_rank(shape, 2, "a 2-D tensor")
        if shape[0] < self.rows:
            raise OpShapeError(f"drop_rows({self.rows}) cannot apply to {list(shape)}")
        return (shape[0] - self.rows, shape[1])

    def apply(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array[self.rows :])

    def inverse(self, shape: Shape) -> tuple[Op, ...]:
        return (PrependRows(rows=self.rows),)

    def describe(self) -> str:
        return f"drop_rows({self.rows})"


# What a mapping table may declare (Reshape is not among them: tables never reshape to fit).
OPS: dict[str, type[Op]] = {
    cls.name: cls
    for cls in (Transpose, MergeHeadsIn, MergeHeadsOut, Flatten, PrependRows, DropRows)
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


def chain_inverse(ops: tuple[Op, ...], shape: Shape) -> tuple[Op, ...]:
    """The ops that undo `ops` applied to a source of `shape`."""
    shapes = [shape]
    for op in ops:
        shapes.append(op.out_shape(shapes[-1]))
    undo: list[Op] = []
    for op, before in zip(reversed(ops), reversed(shapes[:-1]), strict=True):
        undo.extend(op.inverse(before))
    return tuple(undo)


def chain_source_rows(ops: tuple[Op, ...], rows: slice) -> tuple[slice, ...] | None:
    """Where output rows `rows` come from in the source, or None if the chain must see it whole."""
    if not ops:
        return (rows,)
    return ops[0].source_rows(rows) if len(ops) == 1 else None


def chain_apply(ops: tuple[Op, ...], array: np.ndarray) -> np.ndarray:
    for op in ops:
        array = op.apply(array)
    return np.ascontiguousarray(array)
