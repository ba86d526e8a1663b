"""The Python API returns what the command prints, and fails with the same errors."""

from __future__ import annotations

import json

import pytest

from converter import api
from converter.errors import ParityError, UsageError

from .conftest import copy_tree, run_cli


def test_convert_returns_the_conversion_and_parity_reports_the_command_writes(
    tf_checkpoints, tmp_path
):
    lines: list[str] = []
    result = api.convert(tf_checkpoints["masked-lm"], tmp_path / "out", progress=lines.append)
    written = json.loads((tmp_path / "out" / "conversion_report.json").read_text())
    assert result.report == written and result.report["counts"]["missing"] == 0
    parity = json.loads((tmp_path / "out" / "parity_report.json").read_text())
    assert result.parity.passed and result.parity.to_dict()["outputs"] == parity["outputs"]
    assert any(line.startswith("parity passed") for line in lines)


def test_verify_returns_a_failed_result_instead_of_raising(converted, tf_checkpoints, tmp_path):
    out = copy_tree(converted["sequence-classification"], tmp_path / "out")
    result = api.verify(tf_checkpoints["sequence-classification"], out, atol=1e-12)
    assert result.passed is False and isinstance(result.failure(), ParityError)
    assert json.loads((out / "parity_report.json").read_text())["passed"] is False


def test_api_errors_are_the_commands_errors(tf_checkpoints, tmp_path):
    with pytest.raises(UsageError, match="atol must be a number"):
        api.convert(tf_checkpoints["masked-lm"], tmp_path / "out", atol=-1.0)
    with pytest.raises(ParityError) as failure:
        api.convert(tf_checkpoints["masked-lm"], tmp_path / "out", atol=1e-12)
    assert failure.value.path == str(tmp_path / "out.parity-failed")
    code, _, err = run_cli(
        ["convert", str(tf_checkpoints["masked-lm"]), str(tmp_path / "out2"), "--atol", "1e-12"]
    )
    assert code == 1 and err.strip().splitlines()[-1].endswith(
        failure.value.one_line().replace(str(tmp_path / "out"), str(tmp_path / "out2"))
    )


def test_doctor_returns_the_diagnosis_and_repair_writes_the_fix(converted, tmp_path):
    ckpt = converted["sequence-classification"]
    found = api.doctor(ckpt / "model.safetensors")
    assert found.diagnosis.verdict == "loads cleanly" and found.written == []
    files = api.repair(found.examination, tmp_path / "fixed")
    assert "model.safetensors" in files and (tmp_path / "fixed" / "config.json").exists()
