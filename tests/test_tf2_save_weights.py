"""Keras `save_weights` TF-format checkpoints of transformers' TF classes (issue #15).

`model.save_weights("dir/ckpt")` with tf-keras 2.x writes `ckpt.index` + `ckpt.data-…` +
`checkpoint`, named by the object graph (`bert/encoder/layer/0/attention/self_attention/…`), and no
config; the user's `config.json` sits beside it. The checkpoints here are made by the real
producer; the oracle for the tensors is transformers' own TF→PyTorch loader applied to the very
model that was saved, and the reference for parity is that class restored with `load_weights`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from .conftest import (
    BERT_TINY,
    TINY,
    cli_stderr,
    convert_once,
    copy_tree,
    mutated_copy,
    nothing_written,
    randomize_tf_weights,
    read_json,
    run_cli,
)
from .mutations import swapped, verify_fails_at

# (class, table, config class, tiny config, the keys written once because they are tied)
CASES = {
    "bert": (
        "BertForSequenceClassification",
        "bert-keras-save-weights",
        "BertConfig",
        {**BERT_TINY, "num_labels": 3},
        set(),
    ),
    "roberta": (
        "RobertaForMaskedLM",
        "roberta-keras-save-weights",
        "RobertaConfig",
        TINY,
        {"lm_head.decoder.weight", "lm_head.decoder.bias"},
    ),
}


def _train_one_step(model, config) -> None:
    """A step of Adam, so the checkpoint also holds optimizer state and slots, as a
    save_weights during training does."""
    from transformers.modeling_tf_utils import keras  # tf-keras 2.x, the Keras the model uses

    rng = np.random.default_rng(3)
    ids = rng.integers(3, config.vocab_size, size=(2, 7)).astype(np.int32)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.train_on_batch({"input_ids": ids, "labels": np.array([0, 2], np.int32)})


def _save(directory: Path, key: str, seed: int):
    import transformers

    class_name, _, config_class, tiny, _ = CASES[key]
    config = getattr(transformers, config_class)(**tiny)
    model = getattr(transformers, "TF" + class_name)(config, name=f"save_weights_{key}")
    model(model.dummy_inputs)
    randomize_tf_weights(model, seed)
    if key == "bert":
        _train_one_step(model, config)
    model.save_weights(str(directory / "ckpt"))  # TF format: the path has no .h5 suffix
    config.architectures = [class_name]  # as the user's save_pretrained dir has it
    config.save_pretrained(str(directory))
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, tuple[Path, object]]:
    root = tmp_path_factory.mktemp("save_weights")
    return {key: (root / key, _save(root / key, key, seed=80 + i)) for i, key in enumerate(CASES)}


@pytest.fixture(scope="module")
def converted(saved, tmp_path_factory) -> dict[str, tuple[Path, str]]:
    sources = {key: src for key, (src, _) in saved.items()}
    outs = convert_once(tmp_path_factory, "save_weights_converted", sources)
    return {key: (out, cli_stderr(out)) for key, out in outs.items()}


def test_save_weights_checkpoint_is_tf_format_without_config(saved):
    names = sorted(p.name for p in saved["bert"][0].iterdir())
    assert names == ["checkpoint", "ckpt.data-00000-of-00001", "ckpt.index", "config.json"]


@pytest.mark.parametrize("key", list(CASES))
def test_save_weights_checkpoint_converts_and_matches_load_weights(key, converted):
    out, err = converted[key]
    class_name, table = CASES[key][:2]
    assert f"tf2 {table} → {class_name}" in err, err
    assert f"TF{class_name} restored with load_weights" in err and "parity passed" in err, err
    report = read_json(out / "parity_report.json")
    compared = [o["name"] for o in report["outputs"]]
    assert compared[:3] == ["hidden_states[0]", "hidden_states[1]", "hidden_states[2]"], compared
    assert "logits" in compared


@pytest.mark.parametrize("key", list(CASES))
def test_save_weights_tensors_equal_the_saved_models_own_weights(key, saved, converted):
    import transformers
    from transformers.modeling_tf_pytorch_utils import load_tf2_model_in_pytorch_model

    class_name, _, _, _, tied = CASES[key]
    tf_model = saved[key][1]
    pt_model = getattr(transformers, class_name)(tf_model.config)
    load_tf2_model_in_pytorch_model(pt_model, tf_model, allow_missing_keys=False)
    oracle = {k: v.numpy() for k, v in pt_model.state_dict().items()}
    ours = load_file(str(converted[key][0] / "model.safetensors"))
    for name, value in ours.items():
        np.testing.assert_array_equal(value, oracle[name], err_msg=name)
    assert set(oracle) - set(ours) == tied


def test_optimizer_state_in_a_save_weights_checkpoint_is_ignored_with_reasons(converted):
    tensors = read_json(converted["bert"][0] / "conversion_report.json")["source_tensors"]
    ignored = {t["name"]: t.get("reason") for t in tensors if t["fate"] == "ignored"}
    # tf-keras 2.x Adam keeps m and v for each of the 41 trained variables, plus its counters.
    for kind in ("_momentums", "_velocities"):
        slots = [n for n in ignored if n.startswith(f"optimizer/{kind}/")]
        assert len(slots) == 41 and all(ignored[n] for n in slots), sorted(ignored)
    assert ignored.get("optimizer/_iterations"), sorted(ignored)
    assert sum(t["fate"] == "mapped" for t in tensors) == 41


def test_swapped_query_and_key_in_output_fail_verify(saved, converted, tmp_path):
    layer = "roberta.encoder.layer.1.attention.self."
    swap = swapped(layer + "query", layer + "key")
    out = mutated_copy(converted["roberta"][0], tmp_path / "mutated", mutate_tensors=swap)
    verify_fails_at(saved["roberta"][0], out, "hidden_states[2]")


def test_save_weights_checkpoint_without_config_is_refused_naming_the_fix(saved, tmp_path):
    src = copy_tree(saved["bert"][0], tmp_path / "src")
    (src / "config.json").unlink()
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(src), str(out)])
    lines = [line for line in err.splitlines() if line.startswith("tf2pt: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "Keras save_weights" in lines[0] and "config.json" in lines[0], lines[0]
    assert nothing_written(out)
