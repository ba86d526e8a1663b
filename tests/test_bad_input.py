"""Bad input: one clear line naming the path, a non-zero exit code, nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from .conftest import copy_tree, run_cli, staging_leftovers
from .h5edit import transform_weight


def _assert_clean_failure(code, err, expected_code, *fragments):
    assert code == expected_code, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("tf2pt: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[-1]


def test_empty_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(["convert", str(tmp_path / "empty"), str(tmp_path / "out")])
    _assert_clean_failure(code, err, 2, str(tmp_path / "empty"), "directory is empty")
    assert not (tmp_path / "out").exists()


def test_config_without_weights(tmp_path, tf_checkpoints):
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text((tf_checkpoints["base-model"] / "config.json").read_text())
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out")])
    _assert_clean_failure(code, err, 2, "has config.json but no weights", "tf_model.h5")


def test_random_bytes_named_tf_model_h5(tmp_path, tf_checkpoints):
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text((tf_checkpoints["base-model"] / "config.json").read_text())
    (src / "tf_model.h5").write_bytes(os.urandom(4096))
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out")])
    _assert_clean_failure(code, err, 2, str(src / "tf_model.h5"), "not a readable HDF5 file")
    assert not (tmp_path / "out").exists() and not staging_leftovers(tmp_path / "out")


def test_truncated_h5(tmp_path, tf_checkpoints):
    src = copy_tree(tf_checkpoints["base-model"], tmp_path / "src")
    data = (src / "tf_model.h5").read_bytes()
    (src / "tf_model.h5").write_bytes(data[: len(data) // 2])
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out"), "--no-verify"])
    _assert_clean_failure(code, err, 2, "tf_model.h5")
    assert not (tmp_path / "out").exists() and not staging_leftovers(tmp_path / "out")


def test_missing_config_json(tmp_path, tf_checkpoints):
    src = copy_tree(tf_checkpoints["base-model"], tmp_path / "src")
    (src / "config.json").unlink()
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out")])
    _assert_clean_failure(code, err, 2, "no config.json next to the TF weights")


def test_existing_output_is_untouched_without_force(tmp_path, tf_checkpoints):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = run_cli(["convert", str(tf_checkpoints["base-model"]), str(out), "--no-verify"])
    _assert_clean_failure(code, err, 2, "output already exists", "--force")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]

    code, _, err = run_cli(
        ["convert", str(tf_checkpoints["base-model"]), str(out), "--no-verify", "--force"]
    )
    assert code == 0, err
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").exists()
    assert not staging_leftovers(out)


def test_unwritable_output_location(tmp_path, tf_checkpoints):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = blocker / "sub" / "out"
    code, _, err = run_cli(["convert", str(tf_checkpoints["base-model"]), str(out), "--no-verify"])
    _assert_clean_failure(code, err, 2, "cannot create the output directory")
    assert blocker.read_text() == "not a directory"


def test_unknown_head_is_a_usage_error(tmp_path, tf_checkpoints):
    code, _, err = run_cli(
        ["convert", str(tf_checkpoints["base-model"]), str(tmp_path / "o"), "--head", "seq-cls"]
    )
    _assert_clean_failure(code, err, 2, "unknown head 'seq-cls'", "sequence-classification")


def test_nan_weights_are_warned_about_and_converted_faithfully(tmp_path, tf_checkpoints):
    from safetensors.numpy import load_file

    src = copy_tree(tf_checkpoints["base-model"], tmp_path / "src")
    # by suffix: Keras numbers the scope (tf_roberta_model_1) if the process built one before
    transform_weight(src / "tf_model.h5", "roberta", "pooler/dense/bias:0", _with(3, float("nan")))
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(src), str(out), "--no-verify"])
    assert code == 0, err
    assert "warning: roberta/pooler/dense/bias: 1 NaN/Inf value(s)" in err
    assert (
        load_file(str(out / "model.safetensors"))["pooler.dense.bias"][3]
        != load_file(str(out / "model.safetensors"))["pooler.dense.bias"][3]
    )  # NaN kept
    report = json.loads((out / "conversion_report.json").read_text())
    assert report["warnings"]


def _with(index: int, value: float):
    """A change for h5edit.transform_weight: one element replaced."""

    def change(values):
        values[index] = value
        return values

    return change


def _not_json(constant: str):
    raise AssertionError(f"{constant} is not JSON")


def test_nan_weights_fail_verification_by_name(tmp_path, tf_checkpoints):
    src = copy_tree(tf_checkpoints["sequence-classification"], tmp_path / "src")
    transform_weight(src / "tf_model.h5", "classifier", "out_proj/bias:0", _with(0, float("inf")))
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(src), str(out)])
    assert code == 1
    assert "warning: classifier/out_proj/bias: 1 NaN/Inf value(s)" in err
    last = err.strip().splitlines()[-1]
    kept = tmp_path / "out.parity-failed"
    assert last.startswith(f"tf2pt: error: {kept}: parity failed: logits (head output (logits))")
    assert "NaN/Inf" in last and f"{out} was not written" in last
    assert not out.exists()
    parity = json.loads((kept / "parity_report.json").read_text(), parse_constant=_not_json)
    (logits,) = [d for d in parity["outputs"] if d["name"] == "logits"]
    assert logits["nonfinite"] > 0 and not logits["passed"]


def test_a_pytorch_checkpoint_is_refused_unread_and_pointed_to_doctor(tmp_path):
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(tmp_path / "ran"),))

    with open(tmp_path / "pytorch_model.bin", "wb") as fh:
        pickle.dump({"w": Payload()}, fh)
    (tmp_path / "config.json").write_text('{"model_type": "roberta"}')
    for src in (tmp_path / "pytorch_model.bin", tmp_path):
        code, _, err = run_cli(["convert", str(src), str(tmp_path / "out"), "--no-verify"])
        assert code == 2
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"tf2pt: error: {src}: is already a PyTorch checkpoint")
        assert f"tf2pt doctor {src}" in last
    assert not (tmp_path / "ran").exists() and not (tmp_path / "out").exists()


def test_interrupt_mid_conversion_leaves_no_output(tmp_path, tf_checkpoints, monkeypatch):
    from converter.write import tensor_jobs

    calls = {"n": 0}
    real = tensor_jobs.chain_apply

    def interrupted(ops, array):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        return real(ops, array)

    monkeypatch.setattr(tensor_jobs, "chain_apply", interrupted)
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(tf_checkpoints["base-model"]), str(out), "--no-verify"])
    assert code == 130 and "interrupted" in err
    assert not out.exists() and not staging_leftovers(out)


SLOW_CONVERT = """
import sys, time
from converter.write import tensor_jobs
real = tensor_jobs.chain_apply
def slow(ops, array):
    time.sleep(0.2)
    return real(ops, array)
tensor_jobs.chain_apply = slow
from converter.cli import main
main(sys.argv[1:])
"""


def test_sigterm_mid_conversion_leaves_no_output(tmp_path, tf_checkpoints):
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SLOW_CONVERT,
            "convert",
            str(tf_checkpoints["base-model"]),
            str(out),
            "--no-verify",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not staging_leftovers(out) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert staging_leftovers(out), "conversion never started writing"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert not out.exists() and not staging_leftovers(out)
