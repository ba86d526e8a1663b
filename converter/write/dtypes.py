"""The output's floating dtype (`convert --dtype`): its names, and the cast every floating tensor
goes through on its way to the file.

A tensor is first brought to float32 (exactly, for a float16 or bfloat16 source; rounded, for
float64), which is the float32 conversion, then rounded to the output dtype to the nearest
value, ties to even: the rounding `torch.Tensor.to` does, so an output written here is byte for
byte the float32 conversion cast by torch. bfloat16 is done on the bits (numpy has no bfloat16):
the upper half of a float32, rounded on the lower half. NaN is written as the quiet NaN torch
writes (`0xFFFF` for bfloat16, `±0x7E00` for float16); values beyond the dtype's range become ±inf,
as in torch.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, UsageError

DEFAULT_DTYPE = "float32"


def _float32(array: np.ndarray) -> np.ndarray:
    """Any floating source as float32: bfloat16 (ml_dtypes, as TF checkpoints hold it) by its
    bits, exactly; float16 exactly; float64 rounded to nearest even by numpy."""
    if array.dtype.name == "bfloat16":
        bits = array.view(np.uint16).astype(np.uint32) << np.uint32(16)
        return bits.view(np.float32)
    return array.astype(np.float32, copy=False)


def _to_float16(array: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # beyond the range is ±inf, as in torch (and reported)
        out = _float32(array).astype(np.float16)  # numpy rounds to nearest, ties to even
    nan = np.isnan(out)
    if nan.any():
        bits = out.view(np.uint16)
        bits[nan] = (bits[nan] & np.uint16(0x8000)) | np.uint16(0x7E00)
    return out


def _to_bfloat16_bits(array: np.ndarray) -> np.ndarray:
    """The bfloat16 bit patterns (uint16) of `array`, rounded to nearest, ties to even."""
    bits = _float32(array).view(np.uint32)
    odd = (bits >> np.uint32(16)) & np.uint32(1)
    rounded = ((bits + np.uint32(0x7FFF) + odd) >> np.uint32(16)).astype(np.uint16)
    nan = np.isnan(bits.view(np.float32))
    if nan.any():
        rounded[nan] = np.uint16(0xFFFF)
    return rounded


@dataclass(frozen=True)
class OutputDtype:
    """One `--dtype` choice: what torch and config.json call it, what safetensors calls it, what
    numpy holds its bytes in, and the cast from any floating source dtype."""

    name: str  # torch's and config.json's spelling ("bfloat16")
    safetensors: str  # the safetensors header's ("BF16")
    storage: np.dtype  # numpy's dtype for the bytes (uint16 for bfloat16's bit patterns)
    cast: Callable[[np.ndarray], np.ndarray]
    mantissa_bits: int  # explicit fraction bits: the relative spacing of values is 2**-this

    @property
    def eps(self) -> float:
        """Spacing of representable values just above 1.0."""
        return 2.0**-self.mantissa_bits


OUTPUT_DTYPES: dict[str, OutputDtype] = {
    "float32": OutputDtype("float32", "F32", np.dtype("<f4"), _float32, 23),
    "float16": OutputDtype("float16", "F16", np.dtype("<f2"), _to_float16, 10),
    "bfloat16": OutputDtype("bfloat16", "BF16", np.dtype("<u2"), _to_bfloat16_bits, 7),
}
BY_SAFETENSORS = {d.safetensors: d for d in OUTPUT_DTYPES.values()}


def output_dtype(name: str) -> OutputDtype:
    """The `--dtype` named `name`, or a usage error listing the choices."""
    if name not in OUTPUT_DTYPES:
        raise UsageError(
            f"unknown dtype '{name}'", hint=f"choose one of: {', '.join(OUTPUT_DTYPES)}"
        )
    return OUTPUT_DTYPES[name]


def nonfinite(array: np.ndarray) -> int:
    """How many NaN/Inf values a floating array holds, in any source or output form (bfloat16 as
    ml_dtypes or as this module's uint16 bit patterns: exponent bits all set)."""
    if array.dtype == np.uint16:
        return int(np.count_nonzero((array & np.uint16(0x7F80)) == np.uint16(0x7F80)))
    return int(array.size - np.count_nonzero(np.isfinite(_float32(array))))


def is_floating(dtype: np.dtype) -> bool:
    """Whether a source dtype holds floating values (bfloat16 included, which numpy calls `V2`)."""
    return dtype.kind == "f" or dtype.name == "bfloat16"


def stored_dtype(directory: Path) -> str:
    """The one floating dtype the safetensors files in `directory` hold, read from their headers
    (what a verify of an existing output runs the model in)."""
    found: set[str] = set()
    for path in sorted(directory.glob("*.safetensors")):
        try:
            with open(path, "rb") as fh:
                (length,) = struct.unpack("<Q", fh.read(8))
                header = json.loads(fh.read(length))
            found |= {
                entry["dtype"]
                for name, entry in header.items()
                if name != "__metadata__" and entry["dtype"].startswith(("F", "BF"))
            }
        except (OSError, ValueError, KeyError, TypeError, struct.error, AttributeError):
            raise InputError("unreadable safetensors header", path) from None
    if len(found) != 1 or next(iter(found)) not in BY_SAFETENSORS:
        what = ", ".join(sorted(found)) or "no floating tensors"
        raise InputError(
            f"the weights hold {what}; verify runs models stored in one of "
            f"{', '.join(OUTPUT_DTYPES)}",
            directory,
        )
    return BY_SAFETENSORS[found.pop()].name
