"""Write tensors as safetensors one at a time (into a StagedOutput, see staging.py).

The header is computed from shapes before any data is read, then each tensor is produced and
written at its offset, so memory holds one tensor (or one block of it) at a time. Output is
deterministic: tensors in name order, fixed metadata, no timestamps.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import OutputError
from ..readers.base import INDEX_FILE, SAFETENSORS_DTYPES, SINGLE_FILE
from .staging import pause_point


@dataclass(frozen=True)
class TensorJob:
    """A tensor to write: its header entry, and a producer of its bytes as C-order chunks."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    produce: Callable[[], Iterator[np.ndarray]]
    header_dtype: str | None = None  # the safetensors dtype numpy cannot say (BF16 bits in <u2)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


def safetensors_dtype(dtype: np.dtype) -> str:
    key = f"{dtype.kind}{dtype.itemsize}"
    if key not in SAFETENSORS_DTYPES:
        raise OutputError(f"dtype {dtype} has no safetensors equivalent")
    return SAFETENSORS_DTYPES[key]


def _header(jobs: list[TensorJob], metadata: dict[str, str]) -> bytes:
    entries: dict[str, object] = {"__metadata__": metadata}
    offset = 0
    for job in jobs:
        entries[job.name] = {
            "dtype": job.header_dtype or safetensors_dtype(job.dtype),
            "shape": list(job.shape),
            "data_offsets": [offset, offset + job.nbytes],
        }
        offset += job.nbytes
    raw = json.dumps(entries, separators=(",", ":")).encode()
    return raw + b" " * (-len(raw) % 8)  # data starts 8-byte aligned


def write_safetensors(path: Path, jobs: list[TensorJob], metadata: dict[str, str]) -> None:
    header = _header(jobs, metadata)
    little = "<"
    halfway = len(jobs) // 2
    with open(path, "wb") as fh:
        pause_point("before-header")
        fh.write(struct.pack("<Q", len(header)))
        fh.write(header)
        for number, job in enumerate(jobs):
            written = 0
            want = job.dtype.newbyteorder(little)
            for chunk in job.produce():
                if chunk.dtype != job.dtype:
                    raise OutputError(
                        f"tensor '{job.name}' produced {chunk.dtype}, planned {job.dtype}"
                    )
                chunk = np.ascontiguousarray(chunk, dtype=want)
                fh.write(memoryview(chunk).cast("B"))
                if number == halfway and written == 0:
                    fh.flush()
                    pause_point("mid-tensor")
                written += chunk.nbytes
            if written != job.nbytes:
                raise OutputError(
                    f"tensor '{job.name}' produced {written} bytes, planned {job.nbytes}"
                )


def shard(jobs: list[TensorJob], max_bytes: int) -> list[list[TensorJob]]:
    """Split jobs, in order, into shards of at most max_bytes (a larger tensor stands alone)."""
    shards: list[list[TensorJob]] = [[]]
    size = 0
    for job in jobs:
        if shards[-1] and size + job.nbytes > max_bytes:
            shards.append([])
            size = 0
        shards[-1].append(job)
        size += job.nbytes
    return shards


def write_model(directory: Path, jobs: list[TensorJob], max_shard_bytes: int) -> list[str]:
    """model.safetensors, or shards plus model.safetensors.index.json; returns the file names."""
    jobs = sorted(jobs, key=lambda j: j.name)
    metadata = {"format": "pt"}
    shards = shard(jobs, max_shard_bytes)
    if len(shards) == 1:
        write_safetensors(directory / SINGLE_FILE, jobs, metadata)
        pause_point("after-tensors")
        return [SINGLE_FILE]
    names = [f"model-{i:05d}-of-{len(shards):05d}.safetensors" for i in range(1, len(shards) + 1)]
    weight_map = {}
    for name, part in zip(names, shards, strict=True):
        write_safetensors(directory / name, part, metadata)
        weight_map.update({j.name: name for j in part})
    index = {"metadata": {"total_size": sum(j.nbytes for j in jobs)}, "weight_map": weight_map}
    write_json(directory / INDEX_FILE, index)
    pause_point("after-tensors")
    return [*names, INDEX_FILE]


def _strict(data: object) -> object:
    """NaN/Inf become null: JSON has no such numbers, and other readers reject Python's NaN."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: _strict(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_strict(v) for v in data]
    return data


def json_text(data: object) -> str:
    return json.dumps(_strict(data), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)


def write_json(path: Path, data: object) -> None:
    path.write_text(json_text(data) + "\n")
