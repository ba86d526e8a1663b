"""TensorFlow, imported on first need and quietly (its C++ start-up logging is not ours to show)."""

from __future__ import annotations

import os


def tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    return tf
