"""The command's progress lines, and a tick while a step runs long: a user watching `tf2pt`
should never wait more than a few seconds without a line saying what it is doing."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

TICK_SECONDS = 4.0  # longest silence before a tick line
TICK_TEXT = 72  # characters of the running step's line repeated in a tick


class Ticker:
    """Forwards each progress line to `say`; while no new line comes, says every `every`
    seconds how long the current step has been running, and which step it is."""

    def __init__(self, say: Callable[[str], None], every: float = TICK_SECONDS):
        self.say = say
        self.every = every
        self.step = ""
        self.started = self.last = time.monotonic()
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def __call__(self, message: str) -> None:
        with self.lock:
            self.step, self.started = message, time.monotonic()
            self.last = self.started
            self.say(message)

    def _tick(self) -> None:
        while not self.stop.wait(0.25):
            with self.lock:
                now = time.monotonic()
                if self.step and now - self.last >= self.every:
                    self.last = now
                    step = self.step if len(self.step) <= TICK_TEXT else self.step[:TICK_TEXT] + "…"
                    self.say(f"  … {now - self.started:.0f} s: {step}")

    @contextlib.contextmanager
    def running(self) -> Iterator[Ticker]:
        thread = threading.Thread(target=self._tick, name="tf2pt-ticker", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            thread.join()
