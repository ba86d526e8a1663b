"""A TensorFlow checkpoint's files, shared by the TF1 and TF2 readers: `PREFIX.index` beside
`PREFIX.data-0000k-of-0000n` shards, and the step number at the end of the prefix (`ckpt-1000`)."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import InputError

INDEX_SUFFIX = ".index"
DATA_SHARD = re.compile(r"\.data-(\d{5})-of-(\d{5})$")


def checkpoint_step(prefix: Path) -> int:
    m = re.search(r"-(\d+)$", prefix.name)
    return int(m.group(1)) if m else -1


def data_shards(prefix: Path) -> list[Path]:
    """The `.data-0000k-of-0000n` files; all n of them must be there."""
    found = sorted(prefix.parent.glob(prefix.name + ".data-*-of-*"))
    if not found:
        raise InputError(
            f"the checkpoint's data file ({prefix.name}.data-00000-of-0000N) is missing",
            prefix.with_name(prefix.name + INDEX_SUFFIX),
            "the .index file only lists the variables; copy the .data-* file(s) next to it",
        )
    m = DATA_SHARD.search(found[0].name)
    total = int(m.group(2)) if m else 1
    expected = [
        prefix.with_name(f"{prefix.name}.data-{i:05d}-of-{total:05d}") for i in range(total)
    ]
    missing = [p for p in expected if not p.exists()]
    if missing:
        raise InputError(
            f"{len(missing)} of the checkpoint's {total} data shards are missing, e.g. "
            f"{missing[0].name}",
            prefix.parent,
            "copy every .data-* shard next to the .index file",
        )
    return expected
