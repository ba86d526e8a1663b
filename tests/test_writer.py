"""Output files: deterministic, sharded when large, readable by safetensors and transformers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from safetensors import safe_open

from .conftest import build_tf_roberta, copy_tree, run_cli


def _files(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_same_input_gives_byte_identical_output(tf_checkpoints, tmp_path):
    src = tf_checkpoints["masked-lm"]
    for name in ("a", "b"):
        code, _, err = run_cli(["convert", str(src), str(tmp_path / name), "--no-verify"])
        assert code == 0, err
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_safetensors_metadata_and_tensor_names(converted):
    with safe_open(str(converted["sequence-classification"] / "model.safetensors"), "np") as f:
        assert f.metadata() == {"format": "pt"}
        assert "classifier.out_proj.weight" in f.keys()
        assert f.get_tensor("classifier.out_proj.weight").shape == (2, 32)


def test_sharded_output_has_an_index_and_loads_strictly(tf_checkpoints, tmp_path):
    import transformers

    out = tmp_path / "out"
    code, _, err = run_cli(
        [
            "convert",
            str(tf_checkpoints["sequence-classification"]),
            str(out),
            "--no-verify",
            "--max-shard-size",
            "20KB",
        ]
    )
    assert code == 0, err
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and not (out / "model.safetensors").exists()
    for shard in shards:
        assert (out / shard).stat().st_size <= 20_000 + 4096  # header + one tensor past the cap
    model, info = transformers.RobertaForSequenceClassification.from_pretrained(
        str(out), output_loading_info=True
    )
    assert {k: v for k, v in info.items() if v} == {}


def test_sharded_tf_source_converts_and_verifies(tmp_path):
    src = build_tf_roberta(
        tmp_path / "src", "RobertaForMaskedLM", seed=7, save_kwargs={"max_shard_size": "10KB"}
    )
    assert (src / "tf_model.h5.index.json").exists() and not (src / "tf_model.h5").exists()
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out")])
    assert code == 0, err
    report = json.loads((tmp_path / "out" / "conversion_report.json").read_text())
    assert len(report["source"]["weight_files"]) > 1
    assert report["counts"]["duplicates"] == 0  # sharded saves store the embeddings once
    parity = json.loads((tmp_path / "out" / "parity_report.json").read_text())
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-5


NO_FRAMEWORKS = """
import sys
from converter.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
heavy = sorted(m for m in ("tensorflow", "torch", "transformers", "keras") if m in sys.modules)
print("imported:", heavy)
"""


def assert_converts_without_frameworks(src: Path, out: Path) -> None:
    """`tf2pt convert src out --no-verify` in a fresh Python succeeds and imports no framework."""
    argv = [sys.executable, "-c", NO_FRAMEWORKS, "convert", str(src), str(out), "--no-verify"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "imported: []" in result.stdout
    assert (out / "model.safetensors").exists()


def test_converting_an_h5_imports_neither_tensorflow_nor_torch(tf_checkpoints, tmp_path):
    assert_converts_without_frameworks(tf_checkpoints["masked-lm"], tmp_path / "out")


def test_tokenizer_files_are_copied(tf_checkpoints, tmp_path):
    src = copy_tree(tf_checkpoints["base-model"], tmp_path / "src")
    (src / "vocab.json").write_text(json.dumps({"<s>": 0}))
    (src / "merges.txt").write_text("#version: 0.2\n")
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out"), "--no-verify"])
    assert code == 0, err
    assert (tmp_path / "out" / "vocab.json").read_text() == json.dumps({"<s>": 0})
    assert (tmp_path / "out" / "merges.txt").exists()


def test_output_config_writes_defaults_explicitly(tf_checkpoints, tmp_path):
    src = copy_tree(tf_checkpoints["base-model"], tmp_path / "src")
    config = json.loads((src / "config.json").read_text())
    del config["type_vocab_size"]  # RobertaConfig's default is 2, but the weights have 1 row
    (src / "config.json").write_text(json.dumps(config))
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out"), "--no-verify"])
    assert code == 1 and "type_vocab_size=2" in err and "type_vocab_size=1" in err
    config["type_vocab_size"] = 1
    del config["layer_norm_eps"]
    (src / "config.json").write_text(json.dumps(config))
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out"), "--no-verify"])
    assert code == 0, err
    written = json.loads((tmp_path / "out" / "config.json").read_text())
    assert written["layer_norm_eps"] == 1e-12  # RobertaConfig's default, now explicit


def test_row_block_streaming_writes_the_same_bytes(tf_checkpoints, tmp_path, monkeypatch):
    """Tiny blocks force every tensor through the block path (rows, and transposed columns)."""
    from converter.write import tensor_jobs

    src = tf_checkpoints["masked-lm"]
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "whole"), "--no-verify"])
    assert code == 0, err
    reads = []
    real_read = tensor_jobs._read

    def counting_read(tensor, index=None):
        reads.append(index)
        return real_read(tensor, index)

    monkeypatch.setattr(tensor_jobs, "BLOCK_BYTES", 256)
    monkeypatch.setattr(tensor_jobs, "_read", counting_read)
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "blocks"), "--no-verify"])
    assert code == 0, err
    assert sum(index is not None for index in reads) > 100
    assert _files(tmp_path / "whole") == _files(tmp_path / "blocks")


def test_block_streaming_still_checks_stored_copies(tf_checkpoints, tmp_path, monkeypatch):
    from converter.write import tensor_jobs

    from .h5edit import scale_weight

    src = copy_tree(tf_checkpoints["masked-lm"], tmp_path / "src")
    scale_weight(src / "tf_model.h5", "lm_head", "word_embeddings/weight:0", 1.5)
    monkeypatch.setattr(tensor_jobs, "BLOCK_BYTES", 256)
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out"), "--no-verify"])
    assert code == 1 and "differs" in err
    assert not (tmp_path / "out").exists()
