"""TensorFlow, imported on first need and quietly.

TensorFlow's C++ start-up writes lines to the process's stderr that are not ours to show (absl's
"All log messages before absl::InitializeLog() …", oneDNN's and cudart_stub's notices), and
TF_CPP_MIN_LOG_LEVEL no longer silences them. So the import runs with file descriptor 2 pointed at
a temporary file, and afterwards every line that is not such a notice is written back: errors
and anything unknown still show. `tf2pt -v` (TF2PT_VERBOSE=1) shows everything as it comes.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .capabilities import TF_CHECKPOINT, require

VERBOSE_ENV = "TF2PT_VERBOSE"
# absl's pre-initialisation banner, and its INFO/WARNING lines (`I0000 00:00:1796…  port.cc:153]`)
START_UP_NOTICE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IW]\d{4} \d\d:\d\d:\d\d?[.\d]*\s+\d+ [\w.]+:\d+\]"
)


@contextlib.contextmanager
def start_up_notices_hidden() -> Iterator[None]:
    """Run the block with fd 2 captured; write back what is not a start-up notice. Python's own
    `sys.stderr` keeps writing to the terminal meanwhile (progress lines go on)."""
    if os.environ.get(VERBOSE_ENV):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    python_stderr = sys.stderr
    if _writes_to_fd2(python_stderr):
        encoding = getattr(python_stderr, "encoding", None) or "utf-8"
        sys.stderr = open(  # noqa: SIM115 (closed below, after fd 2 is back)
            os.dup(saved), "w", buffering=1, encoding=encoding, errors="backslashreplace"
        )
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if sys.stderr is not python_stderr:
                sys.stderr.close()
                sys.stderr = python_stderr
            capture.seek(0)
            kept = [
                line
                for line in capture.read().decode(errors="replace").splitlines()
                if not START_UP_NOTICE.match(line)
            ]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)


def _writes_to_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a test's capture, a notebook's stream
        return False


def tensorflow(path: str | Path | None = None):
    """The tensorflow module, imported quietly; a one-line error naming the extra when it is not
    installed. `path` is the source being read, for the error line."""
    if "tensorflow" not in sys.modules:
        require(TF_CHECKPOINT, "reading a TensorFlow checkpoint", path)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with start_up_notices_hidden():
            import tensorflow  # noqa: F401
    import tensorflow as tf

    return tf
