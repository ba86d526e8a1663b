"""Issue 17, cases 4–6: an explained position-table mismatch, `doctor --fix` taking tokenizer
files from `--model` and writing a minimal config, and a keras-hub head-only weight file."""

from __future__ import annotations

import json

import torch
import transformers
from safetensors.torch import load_file

from .conftest import TINY, nothing_written, run_cli
from .real_weights import minilm_dir

# Keys transformers' to_dict() adds that a model's config.json should not carry
TO_DICT_NOISE = {"_name_or_path", "num_beams", "bad_words_ids", "return_dict", "torchscript"}


def _doctor(*args) -> tuple[int, str, str]:
    return run_cli(["doctor", *map(str, args)])


def test_a_phobert_shaped_position_table_is_explained_with_its_offset(tmp_path):
    """PhoBERT: 256 positions + RoBERTa's 2 offset rows = 258, against a default config's 512."""
    config = transformers.RobertaConfig(**{**TINY, "max_position_embeddings": 258})
    torch.save(transformers.RobertaModel(config).state_dict(), tmp_path / "pytorch_model.bin")
    default = tmp_path / "default"
    transformers.RobertaConfig(**{**TINY, "max_position_embeddings": 512}).save_pretrained(default)
    code, out, _ = _doctor(tmp_path / "pytorch_model.bin", "--model", default)
    assert code == 1
    line = next(x for x in out.splitlines() if "position_embeddings.weight" in x)
    assert "checkpoint has 258 rows = 256 positions + 2 offset rows" in line
    assert "model 512 rows = 510 positions + 2 offset rows" in line
    assert "up to 256 tokens" in line and "--set max_position_embeddings=258" in line

    out_dir = tmp_path / "fixed"
    code, out, err = _doctor(
        tmp_path / "pytorch_model.bin",
        "--model",
        default,
        "--set",
        "max_position_embeddings=258",
        "--fix",
        out_dir,
    )
    assert code == 0, err
    assert json.loads((out_dir / "config.json").read_text())["max_position_embeddings"] == 258


def test_fix_takes_tokenizer_files_from_model_and_writes_a_minimal_config(tmp_path):
    """Real MiniLM weights saved from a DDP wrapper, alone in their folder; --model has the rest."""
    state = load_file(str(minilm_dir() / "model.safetensors"))
    (tmp_path / "run").mkdir()
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "run" / "ddp.pt")
    out_dir = tmp_path / "fixed"
    code, _, err = _doctor(tmp_path / "run" / "ddp.pt", "--model", minilm_dir(), "--fix", out_dir)
    assert code == 0, err
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        assert (out_dir / name).read_bytes() == (minilm_dir() / name).read_bytes(), name
    config = json.loads((out_dir / "config.json").read_text())
    assert not TO_DICT_NOISE & set(config), sorted(TO_DICT_NOISE & set(config))
    source = json.loads((minilm_dir() / "config.json").read_text())
    for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "layer_norm_eps"):
        assert config[key] == source[key]
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(out_dir))
    batch = tokenizer(["tokenizer files travel with the weights"], return_tensors="pt")
    fixed = transformers.BertModel.from_pretrained(str(out_dir)).eval()
    original = transformers.BertModel.from_pretrained(str(minilm_dir())).eval()
    with torch.no_grad():
        assert torch.equal(fixed(**batch).last_hidden_state, original(**batch).last_hidden_state)


def test_a_keras_hub_task_weights_file_alone_is_named_as_head_only(keras_hub_sources, tmp_path):
    task_weights = keras_hub_sources["sequence-classification"]["preset"] / "task.weights.h5"
    out_dir = tmp_path / "out"
    code, _, err = run_cli(["convert", str(task_weights), str(out_dir), "--no-verify"])
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"tf2pt: error: {task_weights}: holds no keras-hub backbone")
    assert "only the task's head" in last and "convert the preset directory" in last
    assert "hidden_size" not in err and "Traceback" not in err
    assert nothing_written(out_dir)
