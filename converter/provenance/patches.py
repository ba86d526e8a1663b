"""Weight-layout fixes the user declares with `--patch OP=TENSOR[,TENSOR…]` (PyTorch names),
applied to the converted tensors before they are written, in the order given, and recorded in
the reports as declared by the user. A diagnosis proposes them; parity then checks them.

    transpose      a square weight transposed (the source applies that kernel as [out, in])
    swap           two tensors of one shape exchanged (q and k stored under each other's names)
    permute_heads  a q/k/v weight's or bias's output rows, read as [heads, head_dim], reordered
                   as [head_dim, heads]: row h·head_dim + d moves to row d·heads + h (the head
                   count is the config's, under the table's head_count_key)
    unpermute_heads  the inverse: rows read as [head_dim, heads], written as [heads, head_dim]
                   (the fix for an EinsumDense kernel flattened with its two head axes swapped)
    zero           a bias set to zeros (the source stores it but does not add it)

Each op is pure numpy on whole tensors and knows its inverse; zero has none (it loses the values).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import UsageError

Shape = tuple[int, ...]
BY_USER = "with --patch: applied to the converted tensors before they were written"


class NotInvertible(ValueError):
    """The op loses information (zero), so nothing undoes it."""


@dataclass(frozen=True)
class PatchOp:
    name: ClassVar[str]
    arity: ClassVar[int] = 1  # tensors one application takes (swap: 2)

    def problem(self, shapes: list[Shape]) -> str | None:
        """Why the op cannot apply to tensors of these shapes, or None."""
        return None

    def apply(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def inverse(self, shapes: list[Shape]) -> PatchOp:
        """The op that undoes this one on tensors of these (input) shapes."""
        raise NotImplementedError


@dataclass(frozen=True)
class Transpose(PatchOp):
    name: ClassVar[str] = "transpose"

    def problem(self, shapes: list[Shape]) -> str | None:
        (shape,) = shapes
        return None if len(shape) == 2 and shape[0] == shape[1] else "not a square weight"

    def apply(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return [np.ascontiguousarray(arrays[0].T)]

    def inverse(self, shapes: list[Shape]) -> PatchOp:
        return self


@dataclass(frozen=True)
class Swap(PatchOp):
    name: ClassVar[str] = "swap"
    arity: ClassVar[int] = 2

    def problem(self, shapes: list[Shape]) -> str | None:
        return None if shapes[0] == shapes[1] else "the two tensors differ in shape"

    def apply(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return [arrays[1], arrays[0]]

    def inverse(self, shapes: list[Shape]) -> PatchOp:
        return self


@dataclass(frozen=True)
class PermuteHeads(PatchOp):
    name: ClassVar[str] = "permute_heads"
    heads: int = 0

    def problem(self, shapes: list[Shape]) -> str | None:
        (shape,) = shapes
        if not shape or self.heads < 1 or shape[0] % self.heads:
            rows = shape[0] if shape else 0
            return f"its {rows} output rows do not split into {self.heads} heads"
        return None

    def apply(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        (a,) = arrays
        split = a.reshape(self.heads, a.shape[0] // self.heads, *a.shape[1:])
        return [np.ascontiguousarray(split.swapaxes(0, 1).reshape(a.shape))]

    def inverse(self, shapes: list[Shape]) -> PatchOp:
        return UnpermuteHeads(self.heads)


@dataclass(frozen=True)
class UnpermuteHeads(PermuteHeads):
    name: ClassVar[str] = "unpermute_heads"

    def apply(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        (a,) = arrays
        return PermuteHeads(a.shape[0] // self.heads).apply(arrays)

    def inverse(self, shapes: list[Shape]) -> PatchOp:
        return PermuteHeads(self.heads)


@dataclass(frozen=True)
class Zero(PatchOp):
    name: ClassVar[str] = "zero"

    def problem(self, shapes: list[Shape]) -> str | None:
        return None if len(shapes[0]) == 1 else "not a bias (a 1-D tensor)"

    def apply(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return [np.zeros_like(arrays[0])]

    def inverse(self, shapes: list[Shape]) -> PatchOp:
        raise NotInvertible("zeroing loses the values: nothing undoes it")


OPS: dict[str, type[PatchOp]] = {
    op.name: op for op in (Transpose, Swap, PermuteHeads, UnpermuteHeads, Zero)
}


@dataclass(frozen=True)
class Patch:
    """One `--patch` as the user wrote it."""

    op: str
    tensors: tuple[str, ...]

    def text(self) -> str:
        return f"{self.op}={','.join(self.tensors)}"

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "tensors": list(self.tensors), "kind": "user", "reason": BY_USER}


def parse_patch(text: str) -> Patch:
    """`OP=TENSOR[,TENSOR…]`; swap takes exactly two tensors."""
    op, sep, names = text.partition("=")
    op = op.strip()
    tensors = tuple(n.strip() for n in names.split(",") if n.strip())
    if not sep or not tensors:
        raise UsageError(
            f"cannot read --patch '{text}'",
            hint="write OP=TENSOR[,TENSOR…], e.g. --patch transpose=encoder.layer.0.attention."
            "self.query.weight",
        )
    if op not in OPS:
        near = difflib.get_close_matches(op, list(OPS), n=1)
        hint = f"did you mean {near[0]}? " if near else ""
        raise UsageError(f"--patch {text}: unknown op '{op}'", hint=f"{hint}ops: {', '.join(OPS)}")
    if OPS[op].arity == 2 and len(tensors) != 2:
        raise UsageError(f"--patch {text}: swap takes exactly two tensors of one shape")
    return Patch(op, tensors)


Step = tuple[PatchOp, tuple[str, ...]]


def _unknown(patch: Patch, name: str, shapes: dict[str, Shape], tied: dict[str, str]):
    if name in tied:
        return UsageError(
            f"--patch {patch.text()}: {name} is tied to {tied[name]} (one tensor, written once)",
            hint=f"patch {tied[name]}",
        )
    near = difflib.get_close_matches(name, list(shapes), n=1, cutoff=0.8)
    return UsageError(
        f"--patch {patch.text()}: this conversion writes no parameter {name}",
        hint=f"did you mean {near[0]}?" if near else "inspect SRC lists every parameter",
    )


def resolve_patches(
    patches: tuple[Patch, ...],
    shapes: dict[str, Shape],
    tied: dict[str, str],
    dims: dict[str, Any],
    head_count_key: str,
) -> list[Step]:
    """Each patch as op applications on the written tensors (`shapes`: name → shape), checked
    before anything is written; a problem is a one-line UsageError naming the tensor."""
    steps: list[Step] = []
    for patch in patches:
        for name in patch.tensors:
            if name not in shapes:
                raise _unknown(patch, name, shapes, tied)
        if issubclass(OPS[patch.op], PermuteHeads):
            heads = dims.get(head_count_key)
            if not isinstance(heads, int):
                raise UsageError(
                    f"--patch {patch.text()}: the config has no head count ({head_count_key})",
                    hint=f"add --set {head_count_key}=N",
                )
            op: PatchOp = OPS[patch.op](heads)
        else:
            op = OPS[patch.op]()
        groups = [patch.tensors] if op.arity == 2 else [(n,) for n in patch.tensors]
        for names in groups:
            problem = op.problem([shapes[n] for n in names])
            if problem:
                listed = ", ".join(f"{n} {list(shapes[n])}" for n in names)
                raise UsageError(f"--patch {patch.text()}: {listed}: {problem}")
            steps.append((op, names))
    return steps


def apply_patches(arrays: dict[str, np.ndarray], steps: list[Step]) -> dict[str, np.ndarray]:
    """`arrays` with every step applied in order (a new dict; the inputs are not changed)."""
    out = dict(arrays)
    for op, names in steps:
        for name, array in zip(names, op.apply([out[n] for n in names]), strict=True):
            out[name] = array
    return out


def _whole(produce) -> np.ndarray:
    blocks = list(produce())
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=0)


def _step_outputs(op: PatchOp, inputs: tuple) -> Any:
    """Output i of one step, computed once for all its tensors (a swap reads both once)."""
    held: dict[str, Any] = {}

    def output(i: int) -> np.ndarray:
        if "arrays" not in held:
            held["arrays"], held["left"] = op.apply([_whole(p) for p in inputs]), len(inputs)
        array = held["arrays"][i]
        held["left"] -= 1
        if not held["left"]:
            held.clear()
        return array

    return output


def patch_jobs(jobs: list[Any], steps: list[Step]) -> list[Any]:
    """The writer's jobs (dataclasses with name, dtype and produce) with the steps applied to
    the tensors they produce, in order; a patched tensor is produced whole."""
    by_name = {job.name: job for job in jobs}
    producers = {n: by_name[n].produce for _, names in steps for n in names}
    for op, names in steps:
        if len({by_name[n].dtype for n in names}) > 1:
            raise UsageError(f"--patch {op.name}: {', '.join(names)} differ in dtype")
        output = _step_outputs(op, tuple(producers[n] for n in names))
        for i, name in enumerate(names):
            producers[name] = lambda output=output, i=i: iter([output(i)])
    return [
        dataclasses.replace(job, produce=producers[job.name]) if job.name in producers else job
        for job in jobs
    ]
