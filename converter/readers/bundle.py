"""TensorFlow's tensor bundle (`prefix.index` + `prefix.data-0000k-of-0000n`), read without TF.

The `.index` file is a LevelDB-style table, written uncompressed: data blocks of prefix-compressed
key/value entries, an index block pointing at them, and a 48-byte footer. The empty key holds a
`BundleHeaderProto`; every other key is a tensor's name and its value a `BundleEntryProto` saying
where in which data shard the tensor's bytes are. A tensor (or a block of its rows) is read by
offset from its shard, so memory holds only what was asked for, and its CRC-32C is checked as its
rows are read in order. Importing TensorFlow (≈ 600 MB of RSS) only to read bytes is avoided.

Field numbers follow TF's `tensor_bundle.proto`, `tensor_shape.proto` and `types.proto`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from . import crc32c, wire
from .base import Index

INDEX_SUFFIX = ".index"
FOOTER_BYTES = 48
TABLE_MAGIC = 0xDB4775248B80FB57
BLOCK_TRAILER_BYTES = 5  # compression type byte + masked CRC-32C of the block and that byte
UNCOMPRESSED = 0
HEADER_KEY = b""
STRING = "string"  # DT_STRING: variable-length byte strings, stored with their lengths
BFLOAT16 = "bfloat16"

# DataType enum (types.proto) → numpy dtype; TF stores little-endian bytes.
DTYPES: dict[int, str] = {
    1: "<f4",  # DT_FLOAT
    2: "<f8",  # DT_DOUBLE
    3: "<i4",  # DT_INT32
    4: "u1",  # DT_UINT8
    5: "<i2",  # DT_INT16
    6: "i1",  # DT_INT8
    7: STRING,  # DT_STRING
    9: "<i8",  # DT_INT64
    10: "?",  # DT_BOOL
    14: BFLOAT16,  # DT_BFLOAT16
    17: "<u2",  # DT_UINT16
    19: "<f2",  # DT_HALF
    22: "<u4",  # DT_UINT32
    23: "<u8",  # DT_UINT64
}


class Unsupported(wire.WireError):
    """A well-formed bundle holding something tf2pt does not read (not damage)."""


@dataclass(frozen=True)
class Entry:
    """Where one tensor's bytes are (a `BundleEntryProto`)."""

    dtype: np.dtype
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc: int  # CRC-32C of the stored bytes (stored masked, kept unmasked)
    is_string: bool = False


def _numpy_dtype(code: int) -> tuple[np.dtype, bool]:
    name = DTYPES.get(code)
    if name is None:
        raise Unsupported(f"a tensor of TF DataType {code}")
    if name == STRING:
        return np.dtype(object), True
    if name == BFLOAT16:
        try:
            import ml_dtypes
        except ImportError:
            raise Unsupported("a bfloat16 tensor (pip install ml_dtypes to read it)") from None
        return np.dtype(ml_dtypes.bfloat16), False
    return np.dtype(name), False


def _shape(buf: bytes) -> tuple[int, ...]:
    """TensorShapeProto: dim = 2 (Dim: size = 1), unknown_rank = 3."""
    dims = []
    for number, value in wire.fields(buf):
        if number == 2:
            dim = wire.fields(wire.message(value))
            size = next((wire.signed64(v) for n, v in dim if n == 1), 0)
            if size < 0:
                raise wire.WireError("a stored tensor has an unknown dimension")
            dims.append(size)
        elif number == 3 and value:
            raise wire.WireError("a stored tensor has an unknown rank")
    return tuple(dims)


def _entry(buf: bytes) -> Entry:
    """BundleEntryProto: dtype 1, shape 2, shard_id 3, offset 4, size 5, crc32c 6, slices 7."""
    found: dict[int, int | bytes] = {}
    for number, value in wire.fields(buf):
        if number == 7:
            raise Unsupported("a partitioned (sliced) variable")
        found[number] = value
    dtype, is_string = _numpy_dtype(wire.number(found.get(1, 0)))
    shape = _shape(wire.message(found.get(2, b"")))
    entry = Entry(
        dtype=dtype,
        shape=shape,
        shard=wire.number(found.get(3, 0)),
        offset=wire.signed64(found.get(4, 0)),
        size=wire.signed64(found.get(5, 0)),
        crc=crc32c.unmask(wire.number(found.get(6, 0))),
        is_string=is_string,
    )
    if entry.offset < 0 or entry.size < 0:
        raise wire.WireError("a negative offset or size")
    if not is_string and entry.size != math.prod(shape) * dtype.itemsize:
        raise wire.WireError(f"{entry.size} bytes stored for shape {list(shape)} of {dtype}")
    return entry


def _num_shards(buf: bytes) -> int:
    """BundleHeaderProto: num_shards 1, endianness 2 (LITTLE = 0, BIG = 1), version 3."""
    found = dict(wire.fields(buf))
    if wire.number(found.get(2, 0)) != 0:
        raise Unsupported("big-endian data")
    return wire.number(found.get(1, 0))


def _block_handle(buf: bytes | memoryview, pos: int = 0) -> tuple[int, int, int]:
    offset, pos = wire.varint(buf, pos)
    size, pos = wire.varint(buf, pos)
    return offset, size, pos


def _block(table: bytes, offset: int, size: int, where: Path) -> memoryview:
    """A block's contents, after its trailer says it is uncompressed and its checksum holds."""
    end = offset + size
    if end + BLOCK_TRAILER_BYTES > len(table):
        raise wire.WireError("a block runs past the end of the file")
    kind = table[end]
    if kind != UNCOMPRESSED:
        raise InputError(
            f"the index is compressed (block type {kind}); only TensorFlow's uncompressed "
            "tensor-bundle index is read",
            where,
            "re-save the checkpoint with TensorFlow's tf.train.Checkpoint or SavedModel",
        )
    if crc32c.unmask(wire.u32(table, end + 1)) != crc32c.value(table[offset : end + 1]):
        raise wire.WireError("an index block fails its checksum")
    return memoryview(table)[offset:end]


def _block_entries(block: memoryview) -> list[tuple[bytes, memoryview]]:
    """The (key, value) entries of one block; keys share a prefix with the previous key."""
    restarts = wire.u32(block, len(block) - 4)
    limit = len(block) - 4 - 4 * restarts
    if limit < 0:
        raise wire.WireError("a block's restart array is longer than the block")
    entries, key, pos = [], b"", 0
    while pos < limit:
        shared, pos = wire.varint(block, pos)
        unshared, pos = wire.varint(block, pos)
        length, pos = wire.varint(block, pos)
        if shared > len(key) or pos + unshared + length > limit:
            raise wire.WireError("a block entry runs past its block")
        key = key[:shared] + bytes(block[pos : pos + unshared])
        pos += unshared
        entries.append((key, block[pos : pos + length]))
        pos += length
    return entries


def _table_entries(table: bytes, where: Path) -> list[tuple[bytes, memoryview]]:
    """Every (key, value) of the table, in stored (sorted) order."""
    if len(table) < FOOTER_BYTES:
        raise wire.WireError("shorter than the table footer")
    footer = table[-FOOTER_BYTES:]
    if int.from_bytes(footer[-8:], "little") != TABLE_MAGIC:
        raise wire.WireError("no table magic number at the end")
    _, _, pos = _block_handle(footer)  # the metaindex block: unused by tensor bundles
    index_offset, index_size, _ = _block_handle(footer, pos)
    entries = []
    for _, handle in _block_entries(_block(table, index_offset, index_size, where)):
        offset, size, _ = _block_handle(handle)
        entries += _block_entries(_block(table, offset, size, where))
    return entries


def _string_values(data: bytes, count: int) -> tuple[list[bytes], int]:
    """A DT_STRING tensor's elements and the CRC-32C TF records for them: the varint lengths,
    a masked checksum of the lengths, then the bytes; the checksum covers each length as a
    4-byte (or, above 4 GiB, 8-byte) little-endian integer, the lengths' checksum and the bytes."""
    lengths, pos, crc = [], 0, 0
    for _ in range(count):
        length, pos = wire.varint(data, pos)
        lengths.append(length)
        crc = crc32c.extend(crc, length.to_bytes(4 if length < 2**32 else 8, "little"))
    if crc32c.unmask(wire.u32(data, pos)) != crc:
        raise wire.WireError("the string lengths fail their checksum")
    crc = crc32c.extend(crc, data[pos : pos + 4])
    pos += 4
    values = []
    for length in lengths:
        if pos + length > len(data):
            raise wire.WireError("a string runs past its tensor")
        values.append(data[pos : pos + length])
        crc = crc32c.extend(crc, values[-1])
        pos += length
    return values, crc


class Bundle:
    """An opened tensor bundle: every entry parsed from the index; tensors read on demand."""

    def __init__(self, prefix: Path, shards: list[Path]) -> None:
        self.prefix = prefix
        self.index_file = prefix.with_name(prefix.name + INDEX_SUFFIX)
        self.shards = shards
        try:
            table = self.index_file.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read ({exc.strerror or exc})", self.index_file) from None
        try:
            self.entries = self._parse(table)
        except Unsupported as exc:
            raise InputError(
                f"the tensor bundle holds {exc}, which tf2pt does not read",
                self.index_file,
                "re-save the model with TensorFlow as a plain checkpoint or SavedModel",
            ) from None
        except (wire.WireError, ValueError, IndexError) as exc:
            raise InputError(
                f"the tensor-bundle index is damaged ({exc})",
                self.index_file,
                "the .index file is truncated or corrupt; re-save the checkpoint",
            ) from None
        self._progress: dict[str, tuple[int, int]] = {}  # name → (next row, CRC so far)

    def _parse(self, table: bytes) -> dict[str, Entry]:
        entries = _table_entries(table, self.index_file)
        if not entries or entries[0][0] != HEADER_KEY:
            raise wire.WireError("no bundle header (the empty key)")
        num_shards = _num_shards(bytes(entries[0][1]))
        if num_shards != len(self.shards):
            raise InputError(
                f"the index names {num_shards} data shard(s) but {len(self.shards)} are found",
                self.index_file,
                "keep every .data-* shard the checkpoint was saved with next to its .index",
            )
        parsed = {}
        for key, value in entries[1:]:
            name = wire.text(key)
            try:
                entry = _entry(bytes(value))
            except wire.WireError as exc:
                raise type(exc)(f"{exc} ('{name}')") from None
            if not 0 <= entry.shard < num_shards:
                raise wire.WireError(f"tensor '{name}' is in shard {entry.shard} of {num_shards}")
            parsed[name] = entry
        return parsed

    def _bytes(self, name: str, start: int, size: int) -> bytearray:
        entry = self.entries[name]
        shard = self.shards[entry.shard]
        buf = bytearray(size)
        try:
            with shard.open("rb") as f:
                f.seek(entry.offset + start)
                got = f.readinto(buf)
        except OSError as exc:
            raise InputError(f"cannot read ({exc.strerror or exc})", shard) from None
        if got != size:
            raise InputError(
                f"tensor '{name}' runs past the end of the data file",
                shard,
                "the .data file is truncated; copy it again",
            )
        return buf

    def _check(self, name: str, rows: tuple[int, int], data: bytes | memoryview) -> None:
        """Extend the tensor's CRC while its rows are read in order; compare at the last row."""
        entry = self.entries[name]
        first, end = rows
        next_row, crc = self._progress.pop(name, (0, 0))
        if first == 0:
            crc = 0
        elif first != next_row:
            return  # rows read out of order: this pass is not checked
        crc = crc32c.extend(crc, data)
        if end < (entry.shape[0] if entry.shape else 1):
            self._progress[name] = (end, crc)
        elif crc != entry.crc:
            raise InputError(
                f"tensor '{name}' fails its CRC-32C check (stored {entry.crc:#010x}, "
                f"read {crc:#010x})",
                self.shards[entry.shard],
                "the .data file is corrupt; copy it again or re-save the checkpoint",
            )

    def _strings(self, name: str) -> list[bytes]:
        entry = self.entries[name]
        data = bytes(self._bytes(name, 0, entry.size))
        try:
            values, crc = _string_values(data, math.prod(entry.shape))
        except wire.WireError as exc:
            raise InputError(
                f"tensor '{name}' is damaged ({exc})",
                self.shards[entry.shard],
                "the .data file is corrupt; copy it again or re-save the checkpoint",
            ) from None
        if crc != entry.crc:
            raise InputError(
                f"tensor '{name}' fails its CRC-32C check",
                self.shards[entry.shard],
                "the .data file is corrupt; copy it again or re-save the checkpoint",
            )
        return values

    def scalar_bytes(self, name: str) -> bytes:
        """A string scalar's bytes exactly (numpy's `S` dtype would strip trailing NULs)."""
        entry = self.entries[name]
        if not entry.is_string or entry.shape:
            raise InputError(
                f"tensor '{name}' is not a string scalar",
                self.index_file,
                "the checkpoint is damaged; re-save it",
            )
        return self._strings(name)[0]

    def _string_array(self, name: str) -> np.ndarray:
        values, shape = self._strings(name), self.entries[name].shape
        if not shape:
            return np.asarray(values[0])  # numpy's `S` scalar, as TF's reader gives it
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out.reshape(shape)

    def read(self, name: str, index: Index = None) -> np.ndarray:
        """The tensor, or `array[index]` reading only the rows `index` reaches."""
        entry = self.entries[name]
        if entry.is_string:
            array = self._string_array(name)
            return array if index is None else array[index]
        rows = entry.shape[0] if entry.shape else 1
        first, end = 0, rows
        if index and entry.shape and isinstance(index[0], slice) and index[0].step in (None, 1):
            first, end, _ = index[0].indices(rows)
            end = max(first, end)
            index = (slice(None), *index[1:])
        row_bytes = entry.size // rows if rows else 0
        data = self._bytes(name, first * row_bytes, (end - first) * row_bytes)
        self._check(name, (first, end), data)
        array = np.frombuffer(data, dtype=entry.dtype).reshape((end - first, *entry.shape[1:]))
        if not entry.shape:
            array = array.reshape(())
        return array if index is None else np.ascontiguousarray(array[index])
