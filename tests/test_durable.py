"""A published output survives a power cut: every file and directory of the staged output is
flushed to disk (fsync) before the rename that publishes it, and the parent directory, which
holds the new name, after it. Observed by wrapping `os.fsync` and noting, at each call, which
path it flushed and whether the output had been published yet.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from converter import api

from .conftest import build_tf_roberta, run_cli


class FsyncLog:
    """Every os.fsync call, in order: (the path it flushed, whether `published` existed yet)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Path, bool]] = []
        self.published = Path("/nonexistent")

    def before(self) -> list[Path]:
        return [path for path, published in self.calls if not published]

    def after(self) -> list[Path]:
        return [path for path, published in self.calls if published]


@pytest.fixture
def fsyncs(monkeypatch) -> FsyncLog:
    log = FsyncLog()
    real = os.fsync

    def fsync(fd: int) -> None:
        log.calls.append((Path(os.readlink(f"/proc/self/fd/{fd}")), log.published.exists()))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return log


def _assert_durably_published(out: Path, log: FsyncLog) -> None:
    before = log.before()
    staged = next(p for p in before if p.name.startswith(f".{out.name}.tf2pt-partial-"))
    flushed_before = {p.relative_to(staged) for p in before if p.is_relative_to(staged)}
    everything = {p.relative_to(out) for p in out.rglob("*")} | {Path(".")}
    assert everything <= flushed_before  # every file and directory, before the rename
    assert out.parent in log.after()  # the parent directory holds the new entry


def test_convert_flushes_every_file_before_publishing_and_the_parent_after(tmp_path, fsyncs):
    src = build_tf_roberta(tmp_path / "src", "RobertaForMaskedLM")
    out = tmp_path / "nested" / "out"  # `nested` is created by the run: its entry is flushed
    fsyncs.published = out
    lines: list[str] = []
    api.convert(src, out, verify=False, progress=lines.append)
    _assert_durably_published(out, fsyncs)
    assert tmp_path in fsyncs.after()
    assert any(line.startswith("published durably: ") for line in lines)


def test_a_replaced_output_is_flushed_the_same_way(tmp_path, fsyncs):
    src = build_tf_roberta(tmp_path / "src", "RobertaModel")
    out = tmp_path / "out"
    api.convert(src, out, verify=False)
    (out / "conversion_report.json").unlink()  # marks the old output: back once replaced
    fsyncs.published = out / "conversion_report.json"
    fsyncs.calls.clear()
    api.convert(src, out, verify=False, force=True)
    assert {p.name for p in out.iterdir()} <= {p.name for p in fsyncs.before()}
    assert tmp_path in fsyncs.after()


def test_doctor_fix_output_is_flushed_the_same_way(tmp_path, fsyncs):
    import torch
    import transformers

    from .conftest import TINY

    config = transformers.RobertaConfig(**TINY)
    config.architectures = ["RobertaForSequenceClassification"]
    model = transformers.RobertaForSequenceClassification(config)
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, tmp_path / "ddp.pt")
    model.save_pretrained(tmp_path / "model")
    out = tmp_path / "fixed"
    fsyncs.published = out
    code, _, err = run_cli(
        ["doctor", str(tmp_path / "ddp.pt"), "--model", str(tmp_path / "model"), "--fix", str(out)]
    )
    assert code == 0, err
    _assert_durably_published(out, fsyncs)
