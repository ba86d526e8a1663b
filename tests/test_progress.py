"""The command is never silent for long; TensorFlow's start-up notices stay out of its output."""

from __future__ import annotations

import subprocess
import sys
import time

from converter.progress import Ticker


def test_a_long_step_ticks_with_its_elapsed_seconds_and_its_name():
    said: list[str] = []
    ticker = Ticker(said.append, every=0.3)
    with ticker.running():
        ticker("building the reference: a model")
        time.sleep(1.1)
        ticker("running the reference")
    assert said[0] == "building the reference: a model"
    ticks = said[1 : said.index("running the reference")]
    assert len(ticks) >= 2, said
    assert all(t.endswith(" s: building the reference: a model") for t in ticks), said
    assert said[-1] == "running the reference"  # no tick after a fresh line within `every`


def test_a_step_that_keeps_reporting_gets_no_ticks():
    said: list[str] = []
    ticker = Ticker(said.append, every=0.5)
    with ticker.running():
        for i in range(6):
            ticker(f"step {i}")
            time.sleep(0.1)
    assert said == [f"step {i}" for i in range(6)]


# What TensorFlow 2.21's C++ start-up writes to fd 2 (the first two), and a line that matters
BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
ONEDNN = "I0000 00:00:1796659404.806054   11018 port.cc:153] oneDNN custom operations are on."
ERROR = "E0000 00:00:1796659404.827746   11018 cuda.cc:31] a real error"
CHILD = f"""
import os, sys
from converter.tf_import import start_up_notices_hidden
with start_up_notices_hidden():
    for line in {[BANNER, ONEDNN, ERROR]!r}:
        os.write(2, line.encode() + b"\\n")
    print("tf2pt: a progress line", file=sys.stderr, flush=True)
"""


def test_start_up_notices_are_held_back_and_everything_else_is_not():
    quiet = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True)
    assert quiet.returncode == 0, quiet.stderr
    assert "InitializeLog" not in quiet.stderr and "oneDNN" not in quiet.stderr
    assert "a real error" in quiet.stderr and "tf2pt: a progress line" in quiet.stderr
    # the progress line was not held back until the block ended
    assert quiet.stderr.index("a progress line") < quiet.stderr.index("a real error")

    env = {**__import__("os").environ, "TF2PT_VERBOSE": "1"}
    loud = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env)
    assert "InitializeLog" in loud.stderr and "oneDNN" in loud.stderr
