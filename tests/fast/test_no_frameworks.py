"""The fast tier runs the tables and the planner alone: no TensorFlow, PyTorch or transformers
is imported by any of its tests (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pytest_with_guard(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "tests.fast.frameworks_guard"]
    return subprocess.run(
        [*command, "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_guard_fails_a_session_that_imported_a_framework(tmp_path):
    (tmp_path / "test_imports.py").write_text(
        "import sys, types\n\ndef test_x():\n    sys.modules['torch'] = types.ModuleType('torch')\n"
    )
    run = _pytest_with_guard(str(tmp_path / "test_imports.py"), "--rootdir", str(tmp_path))
    assert "frameworks imported: ['torch']" in run.stdout and run.returncode != 0


def test_the_fast_tier_imports_no_framework():
    run = _pytest_with_guard("tests/fast", "--deselect", "tests/fast/test_no_frameworks.py")
    assert "frameworks imported: []" in run.stdout, run.stdout[-3000:] + run.stderr[-2000:]
    assert run.returncode == 0, run.stdout[-3000:]
