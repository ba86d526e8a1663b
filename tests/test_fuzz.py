"""Random damage to a valid checkpoint: never a traceback, never a hang, never partial output."""

from __future__ import annotations

import random
import signal

import pytest

from .conftest import copy_tree, run_cli

CASES = 300
KERAS_CASES = 100
TF1_CASES = 100
DOCTOR_CASES = 100
TF2_CASES = 60
SECONDS_PER_CASE = 30
STRUCTURE_TIMEOUT_S = 2  # a corrupt HDF5 heap can make the C library spin; the reader gives up


def _damage(data: bytes, rng: random.Random) -> bytes:
    kind = rng.choice(["flip", "zero", "truncate", "splice"])
    buf = bytearray(data)
    if kind == "flip":
        for _ in range(rng.randint(1, 16)):
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    elif kind == "zero":
        start = rng.randrange(len(buf))
        buf[start : start + rng.randint(1, 4096)] = b"\0" * len(buf[start : start + 4096])
    elif kind == "truncate":
        del buf[rng.randrange(len(buf)) :]
    else:
        start, length = rng.randrange(len(buf)), rng.randint(1, 512)
        buf[start : start + length] = bytes(rng.randrange(256) for _ in range(length))
    return bytes(buf)


class _Hang(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Hang()


@pytest.fixture
def alarm():
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _convert(src, out) -> list[str]:
    return ["convert", str(src), str(out), "--no-verify"]


def _doctor_fix_masked_lm(src, out) -> list[str]:
    return ["doctor", str(src), "--fix", str(out), "--head", "masked-lm"]


def _doctor_fix(src, out) -> list[str]:
    return ["doctor", str(src), "--fix", str(out)]


def _fuzz(make_source, cases: int, tmp_path, seed: int, command=_convert) -> dict[int, int]:
    """Run `command` (convert, or doctor --fix) on `cases` damaged sources; each must be
    written whole or fail cleanly, in time."""
    rng = random.Random(seed)
    outcomes = {0: 0, 1: 0, 2: 0}
    hangs = 0
    for case in range(cases):
        src = make_source(tmp_path / f"src{case}", rng)
        out = tmp_path / f"out{case}"
        signal.alarm(SECONDS_PER_CASE)
        try:
            code, _, err = run_cli(command(src, out))
        except _Hang:
            pytest.fail(f"case {case}: no answer within {SECONDS_PER_CASE} s")
        finally:
            signal.alarm(0)
        assert code in outcomes, f"case {case}: exit {code}\n{err}"
        assert "Traceback" not in err, f"case {case}:\n{err}"
        leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(f".out{case}.")]
        assert not leftovers, f"case {case}: staging left behind"
        if code == 0:
            assert (out / "model.safetensors").exists() and (out / "config.json").exists()
        else:
            assert not out.exists(), f"case {case}: exit {code} but output exists"
            assert err.strip().splitlines()[-1].startswith("tf2pt: error: ")
        outcomes[code] += 1
        hangs += "no answer after" in err
    print("fuzz outcomes by exit code:", outcomes, "structure timeouts:", hangs)
    assert outcomes[2] > 0  # the damage really was seen
    return outcomes


@pytest.fixture
def short_structure_timeout(monkeypatch):
    from converter.readers import base

    monkeypatch.setattr(base, "STRUCTURE_TIMEOUT_S", STRUCTURE_TIMEOUT_S)


def test_damaged_h5_files_fail_cleanly_or_convert_whole(
    tf_checkpoints, tmp_path, alarm, short_structure_timeout
):
    pristine = (tf_checkpoints["masked-lm"] / "tf_model.h5").read_bytes()

    def make(src, rng):
        copy_tree(tf_checkpoints["masked-lm"], src)
        (src / "tf_model.h5").write_bytes(_damage(pristine, rng))
        return src

    _fuzz(make, CASES, tmp_path, seed=20261122)


def test_damaged_keras_archives_fail_cleanly_or_convert_whole(
    keras_hub_sources, tmp_path, alarm, short_structure_timeout
):
    pristine = keras_hub_sources["masked-lm"]["model.keras"].read_bytes()

    def make(src, rng):
        src.mkdir()
        (src / "model.keras").write_bytes(_damage(pristine, rng))
        return src / "model.keras"

    _fuzz(make, KERAS_CASES, tmp_path, seed=20261123)


def test_damaged_tf1_checkpoints_fail_cleanly_or_convert_whole(tf1_checkpoints, tmp_path, alarm):
    pristine = tf1_checkpoints["classifier"]

    def make(src, rng):
        copy_tree(pristine, src)
        damaged = src / rng.choice(["model.ckpt-100.index", "model.ckpt-100.data-00000-of-00001"])
        damaged.write_bytes(_damage(damaged.read_bytes(), rng))
        return src

    _fuzz(make, TF1_CASES, tmp_path, seed=20261124)


def test_damaged_fairseq_checkpoints_fail_cleanly_or_are_repaired_whole(tmp_path, alarm):
    import torch

    from .test_doctor_fairseq import _fairseq_state, _hf_model, _save_fairseq

    model = _hf_model("RobertaForMaskedLM")
    pristine_dir = tmp_path / "pristine"
    pristine = _save_fairseq(pristine_dir, _fairseq_state(model), with_cfg=False).read_bytes()
    torch.save(  # and the legacy (non-zip) torch.save format, which is a plain pickle stream
        torch.load(pristine_dir / "model.pt", weights_only=False),
        pristine_dir / "legacy.pt",
        _use_new_zipfile_serialization=False,
    )
    legacy = (pristine_dir / "legacy.pt").read_bytes()

    def make(src, rng):
        copy_tree(pristine_dir, src)
        (src / "model.pt").write_bytes(_damage(rng.choice([pristine, legacy]), rng))
        return src / "model.pt"

    _fuzz(make, DOCTOR_CASES, tmp_path, seed=20261125, command=_doctor_fix_masked_lm)


def test_damaged_lightning_checkpoints_fail_cleanly_or_are_repaired_whole(tmp_path, alarm):
    import torch

    from .test_doctor_fairseq import _hf_model

    model = _hf_model("RobertaForSequenceClassification")
    model.save_pretrained(tmp_path / "pristine")
    (tmp_path / "pristine" / "model.safetensors").unlink()  # the config stays beside the ckpt
    checkpoint = {
        "epoch": 1,
        "global_step": 10,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
    }
    torch.save(checkpoint, tmp_path / "pristine" / "last.ckpt")
    pristine = (tmp_path / "pristine" / "last.ckpt").read_bytes()

    def make(src, rng):
        copy_tree(tmp_path / "pristine", src)
        (src / "last.ckpt").write_bytes(_damage(pristine, rng))
        return src / "last.ckpt"

    _fuzz(make, DOCTOR_CASES, tmp_path, seed=20261126, command=_doctor_fix)


def test_damaged_tf2_checkpoints_fail_cleanly_or_convert_whole(tmp_path, alarm):
    """A Model Garden encoder's object-based checkpoint: a damaged object graph, index or data
    file is one clean error, never a traceback or partial output."""
    import numpy as np
    import tensorflow as tf
    from official.nlp.modeling import networks

    encoder = networks.BertEncoderV2(
        vocab_size=50,
        hidden_size=16,
        num_layers=1,
        num_attention_heads=2,
        inner_dim=20,
        max_sequence_length=12,
        type_vocab_size=2,
    )
    ids = tf.ones((1, 3), tf.int32)
    encoder(dict(input_word_ids=ids, input_mask=ids, input_type_ids=ids * 0))
    rng_np = np.random.default_rng(0)
    for w in encoder.weights:
        w.assign(rng_np.normal(0.0, 0.1, size=tuple(w.shape)).astype(np.float32))
    pristine = tmp_path / "pristine"
    tf.train.Checkpoint(encoder=encoder).save(str(pristine / "ckpt"))

    def make(src, rng):
        copy_tree(pristine, src)
        damaged = src / rng.choice(["ckpt-1.index", "ckpt-1.data-00000-of-00001"])
        damaged.write_bytes(_damage(damaged.read_bytes(), rng))
        return src

    _fuzz(make, TF2_CASES, tmp_path / "cases", seed=20261127)
