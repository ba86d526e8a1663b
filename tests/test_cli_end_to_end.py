"""The installed `tf2pt` command, run as a user runs it: a fresh process per command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TF2PT = Path(sys.executable).with_name("tf2pt")
# What TensorFlow's C++ start-up writes to stderr by itself (tf_import.py holds it back)
START_UP_NOTICES = ("absl::InitializeLog", "oneDNN custom operations", "cudart_stub", "I0000 ")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(TF2PT), *args], capture_output=True, text=True, timeout=300)


def test_convert_then_verify_from_the_command_line(tf_checkpoints, tmp_path):
    out = tmp_path / "out"
    converted = _run("convert", str(tf_checkpoints["token-classification"]), str(out), "--json")
    assert converted.returncode == 0, converted.stderr
    report = json.loads(converted.stdout)
    assert report["class"] == "RobertaForTokenClassification"
    assert "parity passed" in converted.stderr
    assert not [n for n in START_UP_NOTICES if n in converted.stderr], converted.stderr
    lines = converted.stderr.splitlines()
    assert all(line.startswith("tf2pt: ") for line in lines), converted.stderr
    assert json.loads((out / "parity_report.json").read_text())["passed"] is True

    verified = _run("verify", str(tf_checkpoints["token-classification"]), str(out))
    assert verified.returncode == 0, verified.stderr
    assert "parity passed" in verified.stderr
    assert not [n for n in START_UP_NOTICES if n in verified.stderr], verified.stderr

    loud = _run("-v", "verify", str(tf_checkpoints["token-classification"]), str(out))
    assert loud.returncode == 0, loud.stderr
    assert "cudart_stub" in loud.stderr or "absl::InitializeLog" in loud.stderr, loud.stderr


def test_archs_and_help():
    archs = _run("archs")
    assert archs.returncode == 0 and "roberta-hf-keras" in archs.stdout
    assert "RobertaForMultipleChoice" in archs.stdout
    usage = _run("--help")
    assert usage.returncode == 0
    for command in ("convert", "verify", "inspect", "archs"):
        assert command in usage.stdout


def test_usage_error_exits_2_without_traceback(tmp_path):
    result = _run("convert", str(tmp_path / "missing"), str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().endswith("no such file or directory")
    assert "Traceback" not in result.stderr
