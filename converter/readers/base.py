"""What every reader yields: a source description and its tensors, loaded one at a time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# Index into a tensor (a numpy-style tuple of slices) so large tensors can be read in blocks.
Index = tuple[slice, ...] | None


@dataclass(frozen=True)
class SourceTensor:
    """One stored tensor: its canonical name, shape and dtype, and how to read it (lazily)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    read: Callable[[Index], np.ndarray] = field(repr=False, compare=False)
    origin: str = ""  # where it lives (file and internal path), for messages

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def load(self) -> np.ndarray:
        return self.read(None)


@dataclass
class Source:
    """A checkpoint as found on disk, before any mapping is applied."""

    path: Path  # what the user pointed at
    layout: str  # e.g. "hf-keras"; selects mapping tables and the TF runner
    config: dict[str, Any]  # the source's own config (HF config.json, bert_config.json, …)
    config_path: Path | None
    tensors: list[SourceTensor]
    weight_files: list[Path]
    tokenizer_files: list[Path] = field(default_factory=list)
    extra_files: list[Path] = field(default_factory=list)  # copied as-is (generation_config.json)
    close: Callable[[], None] = field(default=lambda: None, repr=False)  # release open files

    def tensor_map(self) -> dict[str, SourceTensor]:
        return {t.name: t for t in self.tensors}


TOKENIZER_FILE_NAMES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "sentencepiece.bpe.model",
    "spm.model",
    "bpe.codes",
    "dict.txt",
)
EXTRA_FILE_NAMES = ("generation_config.json",)


def sibling_files(directory: Path, names: tuple[str, ...]) -> list[Path]:
    """The files among `names` that exist in `directory`, in a stable order."""
    return [directory / n for n in names if (directory / n).is_file()]
