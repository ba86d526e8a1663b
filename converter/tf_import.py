"""TensorFlow, imported on first need and quietly (its C++ start-up logging is not ours to show)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .capabilities import TF_CHECKPOINT, require


def tensorflow(path: str | Path | None = None):
    """The tensorflow module; a one-line error naming the extra when it is not installed.

    `path` is the source being read, for the error line."""
    if "tensorflow" not in sys.modules:
        require(TF_CHECKPOINT, "reading a TensorFlow checkpoint", path)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    return tf
