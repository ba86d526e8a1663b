"""One member of a zip archive as a seekable, read-only file, for h5py.

A `.keras` file is a zip holding `model.weights.h5`. h5py reads an HDF5 file through many small
reads at scattered offsets; Python 3.11's `ZipExtFile` answers every backward seek by reading the
member again from its start, which makes a model-sized `.keras` take minutes to list and read.
Keras stores the member uncompressed, so its bytes sit contiguous in the archive: a window onto
them seeks for free. A compressed member falls back to `ZipExtFile` (correct, only slower).
"""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path
from typing import BinaryIO

LOCAL_HEADER = struct.Struct("<4s5H3I2H")  # a zip local file header: 30 bytes before the name
LOCAL_MAGIC = b"PK\x03\x04"
ENCRYPTED = 0x1  # general purpose flag bit 0


class StoredMember(io.RawIOBase):
    """The bytes of an uncompressed member, read straight from the archive file."""

    def __init__(self, path: Path, info: zipfile.ZipInfo):
        self._file = open(path, "rb")  # noqa: SIM115 (held open, closed by close())
        self._file.seek(info.header_offset)
        header = self._file.read(LOCAL_HEADER.size)
        if len(header) < LOCAL_HEADER.size or not header.startswith(LOCAL_MAGIC):
            self._file.close()
            raise zipfile.BadZipFile(f"no local header for {info.filename}")
        *_, name_length, extra_length = LOCAL_HEADER.unpack(header)
        self._start = info.header_offset + LOCAL_HEADER.size + name_length + extra_length
        self._size = info.file_size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer) -> int:
        wanted = max(0, min(len(buffer), self._size - self._position))
        self._file.seek(self._start + self._position)
        got = self._file.readinto(memoryview(buffer).cast("B")[:wanted]) or 0
        self._position += got
        return got

    def close(self) -> None:
        self._file.close()
        super().close()


class _CompressedMember(io.RawIOBase):
    """A compressed member through `ZipExtFile`, closing its archive with it."""

    def __init__(self, archive: zipfile.ZipFile, member: str):
        self._archive = archive
        self._member = archive.open(member)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._member.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._member.seek(offset, whence)

    def readinto(self, buffer) -> int:
        return self._member.readinto(buffer)

    def close(self) -> None:
        self._member.close()
        self._archive.close()
        super().close()


def open_member(path: Path, member: str) -> BinaryIO:
    """`member` of the zip archive at `path`, to read with seeks (raises KeyError if absent)."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & ENCRYPTED:
        return StoredMember(path, info)  # type: ignore[return-value]
    return _CompressedMember(zipfile.ZipFile(path), member)  # type: ignore[return-value]
