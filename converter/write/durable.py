"""Durable publish: what a rename shows after a power cut is what was written.

A rename is atomic for running processes, but the kernel may write the directory entry to disk
before the data it points to: after a crash the published output could hold empty or torn files.
So every file of the staged directory is flushed (fsync) and then each directory's own entries,
bottom-up, before the rename; after it, the parent directory, which holds the new entry (and the
parents of any directories the run created, which hold theirs).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Flushed:
    """What a flush wrote to disk, and how long it took."""

    files: int
    bytes: int
    seconds: float

    def describe(self) -> str:
        size = f"{self.bytes / 1e6:.1f} MB"
        return f"{self.files} files ({size}) flushed to disk in {self.seconds:.2f} s"


def fsync_path(path: Path) -> None:
    """fsync one file or directory (a directory's fsync makes its entries durable)."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(directory: Path) -> Flushed:
    """Every regular file under `directory`, then every directory from the deepest up."""
    start = time.perf_counter()
    files = size = 0
    directories = []
    for root, _, names in os.walk(directory):
        directories.append(Path(root))
        for name in names:
            path = Path(root, name)
            if path.is_file() and not path.is_symlink():
                fsync_path(path)
                files += 1
                size += path.stat().st_size
    for d in reversed(directories):
        fsync_path(d)
    return Flushed(files, size, round(time.perf_counter() - start, 3))
