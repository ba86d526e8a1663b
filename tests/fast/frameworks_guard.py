"""A pytest plugin for the fast tier's own check: the session fails if any framework was
imported (`-p tests.fast.frameworks_guard`)."""

from __future__ import annotations

import sys

FRAMEWORKS = ("tensorflow", "torch", "keras", "tf_keras", "transformers", "keras_hub")


def pytest_sessionfinish(session, exitstatus):
    loaded = sorted(m for m in FRAMEWORKS if m in sys.modules)
    print(f"\nframeworks imported: {loaded}")
    if loaded:
        session.exitstatus = 1
