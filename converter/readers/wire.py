"""The protobuf wire format, decoded by hand: enough to read the few small TF protos a tensor
bundle stores (its header, its entries, the object graph) without importing TensorFlow."""

from __future__ import annotations

import struct
from collections.abc import Iterator

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """(the varint at `pos`, the position after it)."""
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise WireError("a varint runs past the end")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise WireError("a varint is longer than 10 bytes")


def fields(buf: bytes | memoryview) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of each field in stored order: an int for varint and fixed
    fields, the bytes of a length-delimited one (a string, a bytes field or a sub-message)."""
    pos = 0
    while pos < len(buf):
        tag, pos = varint(buf, pos)
        number, kind = tag >> 3, tag & 7
        if number == 0:
            raise WireError("field number 0")
        if kind == VARINT:
            value, pos = varint(buf, pos)
        elif kind == LENGTH_DELIMITED:
            size, pos = varint(buf, pos)
            if pos + size > len(buf):
                raise WireError("a field runs past the end")
            value, pos = bytes(buf[pos : pos + size]), pos + size
        elif kind in (FIXED32, FIXED64):
            width = 4 if kind == FIXED32 else 8
            if pos + width > len(buf):
                raise WireError("a field runs past the end")
            value = int.from_bytes(buf[pos : pos + width], "little")
            pos += width
        else:
            raise WireError(f"wire type {kind} (groups) is not used by these protos")
        yield number, value


def text(value: int | bytes) -> str:
    """A proto3 `string` field's value."""
    if not isinstance(value, bytes):
        raise WireError("a string field holds a number")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise WireError("a string field is not UTF-8") from None


def number(value: int | bytes) -> int:
    if isinstance(value, bytes):
        raise WireError("a number field holds bytes")
    return value


def signed64(value: int | bytes) -> int:
    """An `int64` field: varints carry negative values in two's complement."""
    n = number(value)
    return n - (1 << 64) if n >= 1 << 63 else n


def message(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise WireError("a message field holds a number")
    return value


def u32(buf: bytes | memoryview, pos: int) -> int:
    if pos < 0 or pos + 4 > len(buf):
        raise WireError("a fixed32 runs past the end")
    return struct.unpack_from("<I", buf, pos)[0]
