"""`make convert-all`: parallel, past failures, incremental, one summary, non-zero on failure."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from .conftest import copy_tree

ROOT = Path(__file__).resolve().parents[1]


def _make(src: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "make",
            "-j2",
            "-k",
            "convert-all",
            f"SRC_DIR={src}",
            f"OUT_DIR={out}",
            # the venvs are the ones running this test: never reinstall from inside it
            "-o",
            ".venv/.installed",
            "-o",
            ".venv-hf5/.installed",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _mtimes(out: Path) -> dict[str, float]:
    return {
        str(p.relative_to(out)): p.stat().st_mtime
        for p in out.rglob("*")
        if p.name.endswith((".stamp", ".safetensors", ".log"))
    }


def test_convert_all_builds_good_sources_reports_bad_ones_and_is_incremental(
    tf_checkpoints, tmp_path
):
    src = tmp_path / "src"
    src.mkdir()
    copy_tree(tf_checkpoints["sequence-classification"], src / "sentiment")
    copy_tree(tf_checkpoints["question-answering"], src / "squad")
    broken = copy_tree(tf_checkpoints["base-model"], src / "broken")
    (broken / "tf_model.h5").write_bytes(os.urandom(3000))
    out = tmp_path / "out"

    first = _make(src, out)
    assert first.returncode != 0, first.stdout + first.stderr
    for name in ("sentiment", "squad"):
        assert (out / name / "model.safetensors").exists()
        assert json.loads((out / name / "parity_report.json").read_text())["passed"]
    assert not (out / "broken").exists()
    assert (out / "broken.log").read_text().strip().splitlines()[-1].startswith("tf2pt: error:")

    rows = {r["name"]: r for r in json.loads((out / "summary.json").read_text())}
    assert set(rows) == {"sentiment", "squad", "broken"}
    assert rows["sentiment"]["status"] == "ok" and rows["squad"]["status"] == "ok"
    assert rows["sentiment"]["head"] == "sequence-classification"
    assert rows["squad"]["head"] == "question-answering"
    assert rows["sentiment"]["architecture"] == "roberta"
    assert rows["sentiment"]["parameters"] > 0 and rows["sentiment"]["max_abs_diff"] <= 1e-5
    assert rows["sentiment"]["seconds"] > 0
    assert rows["broken"]["status"] == "failed"
    assert "not a readable HDF5 file" in rows["broken"]["error"]
    assert "| broken | failed |" in (out / "summary.md").read_text()

    before = _mtimes(out)
    second = _make(src, out)
    assert second.returncode != 0  # the broken source is still broken
    assert "ok      " not in second.stdout and "FAILED" not in second.stdout
    assert _mtimes(out) == before  # no conversion work at all

    (src / "squad" / "config.json").touch()
    third = _make(src, out)
    assert "ok      squad" in third.stdout and "ok      sentiment" not in third.stdout
