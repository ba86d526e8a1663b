"""`tf2pt doctor` on real transformers checkpoints with each problem injected.

Each case builds a tiny RobertaFor…/BertFor… model with perturbed weights, saves its state_dict
the way a training script would with the problem in it, and checks that the diagnosis names
the problem, that a lossless `--fix` loads with nothing missing, unexpected or mismatched and
reproduces the original model's outputs exactly, and that a lossy case writes nothing.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

from .conftest import BERT_TINY, TINY, nothing_written, run_cli


def _perturbed(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Default init leaves biases 0 and LayerNorms 1, which would hide swapped tensors."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.1)
    return model.eval()


def _roberta(class_name: str, num_labels: int = 2, seed: int = 0):
    config = transformers.RobertaConfig(**TINY, num_labels=num_labels)
    config.architectures = [class_name]
    torch.manual_seed(seed)
    return _perturbed(getattr(transformers, class_name)(config), seed)


def _bert(class_name: str, seed: int = 0):
    config = transformers.BertConfig(**BERT_TINY)
    config.architectures = [class_name]
    torch.manual_seed(seed)
    return _perturbed(getattr(transformers, class_name)(config), seed)


INPUTS = {
    "input_ids": torch.tensor([[0, 5, 9, 17, 33, 2], [0, 44, 12, 2, 1, 1]]),
    "attention_mask": torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]]),
}


def _outputs(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        out = model(**INPUTS)
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


def _load_strictly(directory: Path, class_name: str) -> torch.nn.Module:
    model, info = getattr(transformers, class_name).from_pretrained(
        str(directory), output_loading_info=True
    )
    assert {k: v for k, v in info.items() if v} == {}
    return model.eval()


def _doctor(*args) -> tuple[int, str, str]:
    return run_cli(["doctor", *map(str, args)])


def _diagnosis(*args) -> dict:
    code, out, err = _doctor(*args, "--json")
    assert code in (0, 1), err
    return json.loads(out)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A 2-label RobertaForSequenceClassification and its save_pretrained dir."""
    model = _roberta("RobertaForSequenceClassification")
    directory = tmp_path_factory.mktemp("doctor") / "classifier"
    model.save_pretrained(directory)
    return model, directory


def test_a_save_pretrained_dir_loads_cleanly(classifier):
    model, directory = classifier
    code, out, _ = _doctor(directory)
    assert code == 0
    assert out.strip().splitlines()[-1] == "verdict: loads cleanly"
    report = _diagnosis(directory)
    assert report["counts"] == {"as-is": len(model.state_dict())}
    assert report["missing"] == [] and report["class"] == "RobertaForSequenceClassification"


def test_sharded_safetensors_are_read_through_their_index(classifier, tmp_path):
    model, _ = classifier
    model.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    report = _diagnosis(tmp_path / "sharded")
    assert report["verdict"] == "loads cleanly"
    assert report["counts"] == {"as-is": len(model.state_dict())}


def test_ddp_wrapped_save_is_repaired_and_fix_reproduces_outputs(classifier, tmp_path):
    model, directory = classifier
    wrapped = torch.nn.DataParallel(model)  # on CPU it only wraps: keys gain "module."
    torch.save(wrapped.state_dict(), tmp_path / "ddp.pt")
    code, out, _ = _doctor(tmp_path / "ddp.pt", "--model", directory)
    assert code == 0
    assert f"repaired    {len(model.state_dict())} key(s) by strip-module" in out
    assert "DistributedDataParallel" in out
    assert out.strip().splitlines()[-1] == "verdict: loads after repair"

    code, _, err = _doctor(tmp_path / "ddp.pt", "--model", directory, "--fix", tmp_path / "fixed")
    assert code == 0, err
    fixed = _load_strictly(tmp_path / "fixed", "RobertaForSequenceClassification")
    assert torch.equal(_outputs(fixed), _outputs(model))
    report = json.loads((tmp_path / "fixed" / "doctor_report.json").read_text())
    assert report["repairs_used"].keys() == {"strip-module"}


def test_lightning_style_checkpoint_with_model_prefix_is_unwrapped(classifier, tmp_path):
    model, directory = classifier
    checkpoint = {
        "epoch": 3,
        "global_step": 1200,
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
    }
    torch.save(checkpoint, tmp_path / "last.ckpt.pt")
    report = _diagnosis(tmp_path / "last.ckpt.pt", "--model", directory)
    assert report["verdict"] == "loads after repair"
    assert report["repairs_used"].keys() == {"strip-model"}
    assert any("'state_dict' entry" in n for n in report["notes"])


def test_base_prefix_missing_is_added(classifier, tmp_path):
    """The encoder saved from `model.roberta` plus the head saved from `model`."""
    model, directory = classifier
    state = {k.removeprefix("roberta."): v for k, v in model.state_dict().items()}
    save_file(state, tmp_path / "model.safetensors")
    code, out, _ = _doctor(tmp_path / "model.safetensors", "--model", directory)
    assert code == 0
    assert "by add-base-prefix" in out and "keys without 'roberta.'" in out
    code, _, err = _doctor(
        tmp_path / "model.safetensors", "--model", directory, "--fix", tmp_path / "fixed"
    )
    assert code == 0, err
    fixed = _load_strictly(tmp_path / "fixed", "RobertaForSequenceClassification")
    assert torch.equal(_outputs(fixed), _outputs(model))


def test_base_prefix_present_is_stripped_for_the_bare_model(tmp_path):
    model = _bert("BertModel", seed=3)
    model.config.save_pretrained(tmp_path / "config")
    save_file({f"bert.{k}": v for k, v in model.state_dict().items()}, tmp_path / "w.safetensors")
    report = _diagnosis(tmp_path / "w.safetensors", "--model", tmp_path / "config")
    assert report["class"] == "BertModel"
    assert report["repairs_used"].keys() == {"strip-base-prefix"}
    assert report["counts"] == {"repaired": len(model.state_dict())}
    code, _, err = _doctor(
        tmp_path / "w.safetensors", "--model", tmp_path / "config", "--fix", tmp_path / "fixed"
    )
    assert code == 0, err
    assert torch.equal(_outputs(_load_strictly(tmp_path / "fixed", "BertModel")), _outputs(model))


def test_tf_era_gamma_beta_names_are_renamed_and_the_tied_decoder_is_known(tmp_path):
    model = _bert("BertForMaskedLM", seed=4)
    state = {}
    for key, value in model.state_dict().items():
        key = key.replace("LayerNorm.weight", "LayerNorm.gamma")
        state[key.replace("LayerNorm.bias", "LayerNorm.beta")] = value.clone()
    directory = tmp_path / "ckpt"
    directory.mkdir()
    torch.save(state, directory / "pytorch_model.bin")
    model.config.to_json_file(directory / "config.json")
    (directory / "vocab.txt").write_text("[PAD]\n[UNK]\n")

    code, out, _ = _doctor(directory)
    assert code == 0
    assert "gamma-to-weight" in out and "beta-to-bias" in out
    assert "tied        cls.predictions.decoder.weight: tied to bert.embeddings.word_" in out
    report = _diagnosis(directory)
    gammas = [k for k in report["keys"] if k["key"].endswith(".gamma")]
    assert gammas and all(k["repairs"] == ["gamma-to-weight"] for k in gammas)

    code, _, err = _doctor(directory, "--fix", tmp_path / "fixed")
    assert code == 0, err
    fixed = _load_strictly(tmp_path / "fixed", "BertForMaskedLM")
    assert torch.equal(_outputs(fixed), _outputs(model))
    assert (tmp_path / "fixed" / "vocab.txt").read_text() == "[PAD]\n[UNK]\n"
    written = load_file(str(tmp_path / "fixed" / "model.safetensors"))
    assert not [k for k in written if "gamma" in k or "beta" in k]


@pytest.fixture(scope="module")
def five_label_model_dir(tmp_path_factory):
    model = _roberta("RobertaForSequenceClassification", num_labels=5, seed=9)
    directory = tmp_path_factory.mktemp("doctor") / "five"
    model.config.save_pretrained(directory)
    return directory


def test_two_label_head_into_five_label_model_names_both_numbers(
    classifier, five_label_model_dir, tmp_path
):
    _, directory = classifier
    ckpt = directory / "model.safetensors"
    code, out, _ = _doctor(ckpt, "--model", five_label_model_dir)
    assert code == 1
    assert (
        "classifier.out_proj: checkpoint has 2 labels, model has 5 — pass --num-labels 2 or "
        "re-initialise the head with --drop-head" in out
    )
    assert out.strip().splitlines()[-1] == "verdict: cannot load without losing weights"

    out_dir = tmp_path / "fixed"
    code, _, err = _doctor(ckpt, "--model", five_label_model_dir, "--fix", out_dir)
    assert code == 1
    assert "not writing a repaired checkpoint" in err and str(ckpt) in err
    assert nothing_written(out_dir)


def test_num_labels_choice_keeps_the_trained_head_exactly(
    classifier, five_label_model_dir, tmp_path
):
    model, directory = classifier
    out_dir = tmp_path / "fixed"
    args = (directory / "model.safetensors", "--model", five_label_model_dir, "--num-labels", 2)
    code, _, err = _doctor(*args, "--fix", out_dir)
    assert code == 0, err
    fixed = _load_strictly(out_dir, "RobertaForSequenceClassification")
    assert fixed.config.num_labels == 2
    assert torch.equal(_outputs(fixed), _outputs(model))
    report = json.loads((out_dir / "doctor_report.json").read_text())
    assert report["choices"] == {"num_labels": 2}
    assert report["verdict"] == "loads after repair"


def test_drop_head_reinitialises_only_the_mismatched_head_and_records_it(
    classifier, five_label_model_dir, tmp_path
):
    model, directory = classifier
    out_dir = tmp_path / "fixed"
    args = (directory / "model.safetensors", "--model", five_label_model_dir, "--drop-head")
    code, _, err = _doctor(*args, "--fix", out_dir)
    assert code == 0, err
    fixed = _load_strictly(out_dir, "RobertaForSequenceClassification")
    assert fixed.config.num_labels == 5
    report = json.loads((out_dir / "doctor_report.json").read_text())
    assert report["choices"] == {"drop_head": True}
    assert report["reinitialised"] == ["classifier.out_proj.weight", "classifier.out_proj.bias"]
    original, new = model.state_dict(), fixed.state_dict()
    assert fixed.classifier.out_proj.weight.shape == (5, TINY["hidden_size"])
    kept = [k for k in new if not k.startswith("classifier.out_proj.")]
    assert kept and all(torch.equal(new[k], original[k]) for k in kept)
    assert fixed.classifier.out_proj.weight.std() > 0  # drawn by the model's init, not zeros


def test_a_pretraining_pooler_has_no_place_in_a_masked_lm_unless_dropped(tmp_path):
    model = _roberta("RobertaForMaskedLM", seed=5)
    model.save_pretrained(tmp_path / "mlm")
    state = dict(model.state_dict())
    hidden = TINY["hidden_size"]
    state["roberta.pooler.dense.weight"] = torch.randn(hidden, hidden)
    state["roberta.pooler.dense.bias"] = torch.randn(hidden)
    save_file({k: v.clone() for k, v in state.items()}, tmp_path / "pretrained.safetensors")
    args = (tmp_path / "pretrained.safetensors", "--model", tmp_path / "mlm")
    report = _diagnosis(*args)
    assert report["verdict"] == "cannot load without losing weights"
    assert {k["key"] for k in report["keys"] if k["fate"] == "unexpected"} == {
        "roberta.pooler.dense.weight",
        "roberta.pooler.dense.bias",
    }
    assert {k["key"] for k in report["keys"] if k["fate"] == "tied"} == {
        "lm_head.decoder.weight",
        "lm_head.decoder.bias",
    }
    code, _, err = _doctor(*args, "--drop-head", "--fix", tmp_path / "fixed")
    assert code == 0, err
    fixed = _load_strictly(tmp_path / "fixed", "RobertaForMaskedLM")
    assert torch.equal(_outputs(fixed), _outputs(model))
    report = json.loads((tmp_path / "fixed" / "doctor_report.json").read_text())
    assert report["counts"]["dropped"] == 2 and report["reinitialised"] == []


def test_a_deleted_layer_is_lossy_names_the_layer_and_fix_refuses(classifier, tmp_path):
    model, directory = classifier
    state = {k: v for k, v in model.state_dict().items() if ".layer.1." not in k}
    torch.save(state, tmp_path / "pruned.pt")
    report = _diagnosis(tmp_path / "pruned.pt", "--model", directory)
    assert report["verdict"] == "cannot load without losing weights"
    assert report["missing_by_layer"] == {"encoder.layer.1": 16}  # the table's layer block
    code, out, _ = _doctor(tmp_path / "pruned.pt", "--model", directory)
    assert code == 1
    assert "16 parameter(s) would stay randomly initialised: encoder.layer.1 (16)" in out
    for flag in ([], ["--drop-head"]):
        out_dir = tmp_path / "fixed"
        code, _, err = _doctor(
            tmp_path / "pruned.pt", "--model", directory, *flag, "--fix", out_dir
        )
        assert code == 1, err
        assert nothing_written(out_dir)


def test_an_old_position_ids_buffer_is_ignored_with_its_reason(classifier, tmp_path):
    """transformers < 4.31 saved `embeddings.position_ids`; it is an arange, not a weight."""
    model, directory = classifier
    state = dict(model.state_dict())
    positions = TINY["max_position_embeddings"]
    state["roberta.embeddings.position_ids"] = torch.arange(positions).expand((1, -1)).clone()
    torch.save(state, tmp_path / "old.bin")
    report = _diagnosis(tmp_path / "old.bin", "--model", directory)
    assert report["verdict"] == "loads after repair"
    (fate,) = [k for k in report["keys"] if k["fate"] == "ignored"]
    assert fate["key"] == "roberta.embeddings.position_ids" and "not a weight" in fate["meaning"]
    code, _, err = _doctor(tmp_path / "old.bin", "--model", directory, "--fix", tmp_path / "fixed")
    assert code == 0, err
    fixed = _load_strictly(tmp_path / "fixed", "RobertaForSequenceClassification")
    assert torch.equal(_outputs(fixed), _outputs(model))


def test_a_transposed_kernel_is_explained(classifier, tmp_path):
    model, directory = classifier
    state = dict(model.state_dict())
    key = "roberta.encoder.layer.0.intermediate.dense.weight"
    state[key] = state[key].T.contiguous()
    save_file(state, tmp_path / "t.safetensors")
    report = _diagnosis(tmp_path / "t.safetensors", "--model", directory)
    (fate,) = [k for k in report["keys"] if k["fate"] == "mismatched"]
    assert fate["key"] == key and "stored transposed" in fate["meaning"]


def test_tf_variable_names_are_renamed_and_transposed_by_the_tables(
    tf_checkpoints, converted, tmp_path
):
    """A dump of a TFRobertaForSequenceClassification's weights by their TF names."""
    import h5py

    state = {}
    with h5py.File(tf_checkpoints["sequence-classification"] / "tf_model.h5", "r") as h5:
        for group in h5.attrs["layer_names"]:
            for name in h5[group].attrs["weight_names"]:
                state[name] = torch.from_numpy(h5[group][name][()])
    assert any(k.endswith("query/kernel:0") for k in state)
    save_file(state, tmp_path / "tf_dump.safetensors")
    reference = converted["sequence-classification"]
    args = (tmp_path / "tf_dump.safetensors", "--model", reference)
    report = _diagnosis(*args)
    assert report["verdict"] == "loads after repair"
    assert report["repairs_used"].keys() == {"tf-names"}
    kernel = next(k for k in report["keys"] if k["key"].endswith("layer_._0/output/dense/kernel:0"))
    assert kernel["ops"] == ["transpose"]
    code, _, err = _doctor(*args, "--fix", tmp_path / "fixed")
    assert code == 0, err
    _load_strictly(tmp_path / "fixed", "RobertaForSequenceClassification")
    fixed = load_file(str(tmp_path / "fixed" / "model.safetensors"))
    expected = load_file(str(reference / "model.safetensors"))
    assert fixed.keys() == expected.keys()
    assert all(torch.equal(fixed[k], expected[k]) for k in expected)


def test_without_config_the_head_is_chosen_from_the_keys(classifier, tmp_path):
    model, _ = classifier
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    args = (tmp_path / "bare.pt", "--arch", "roberta", "--set", "num_attention_heads=4")
    report = _diagnosis(*args)
    assert report["class"] == "RobertaForSequenceClassification"
    assert report["verdict"].startswith("loads after repair; family defaults: layer_norm_eps=")
    assert report["assumed"] == {} and report["family_defaults"]["layer_norm_eps"] == 1e-5


def test_fix_refuses_bfloat16_naming_the_file_and_writes_nothing(classifier, tmp_path):
    model, directory = classifier
    state = {k: v.to(torch.bfloat16) for k, v in model.state_dict().items()}
    save_file(state, tmp_path / "bf16.safetensors")
    out_dir = tmp_path / "fixed"
    code, _, err = _doctor(tmp_path / "bf16.safetensors", "--model", directory, "--fix", out_dir)
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"tf2pt: error: {tmp_path / 'bf16.safetensors'}: tensor '")
    assert "is bfloat16, which --fix cannot write yet" in last
    assert nothing_written(out_dir)


class _Payload:
    def __reduce__(self):
        return (os.mkdir, (str(MARKER),))


MARKER = Path("/tmp/tf2pt-doctor-pickle-ran")


def test_a_pickle_carrying_code_is_refused_and_never_runs(tmp_path):
    if MARKER.exists():
        MARKER.rmdir()
    with open(tmp_path / "evil.bin", "wb") as fh:
        pickle.dump({"weight": _Payload()}, fh)
    code, _, err = _doctor(tmp_path / "evil.bin", "--arch", "roberta")
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"tf2pt: error: {tmp_path / 'evil.bin'}: does not load with torch.load")
    assert "weights_only=True" in line and "Traceback" not in err
    assert not MARKER.exists()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "nowhere.safetensors", "no such file or directory"),
        (lambda d: d, "directory holds no PyTorch weights"),
        (
            lambda d: (
                (d / "w.safetensors").write_bytes(b"\x08" + b"\0" * 20) and d / "w.safetensors"
            ),
            "not a readable safetensors file",
        ),
        (
            lambda d: (d / "tf_model.h5").write_bytes(b"x") and d / "tf_model.h5",
            "not a PyTorch checkpoint",
        ),
    ],
)
def test_bad_checkpoints_are_one_line_input_errors(make, message, tmp_path):
    path = make(tmp_path)
    code, _, err = _doctor(path, "--arch", "roberta")
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(f"tf2pt: error: {path}: {message}")
    assert "Traceback" not in err
