"""ELECTRA, added with tables and tests only: transformers' TFElectra* saves (every head, with and
without the embedding projection) and google-research/electra TF1 checkpoints (discriminator and
generator in one file, no config) convert with every tensor exact, load strictly in transformers
4.57 and 5, and verify against their TF reference; real bugs are caught."""

from __future__ import annotations

import json

import numpy as np
import pytest
import transformers
from safetensors.numpy import load_file

from .conftest import conversions_of, convert_once, copy_tree, mutated_copy, read_json, run_cli
from .electra_fixtures import (
    ELECTRA_HEAD_CLASSES,
    RELEASES,
    build_electra_heads,
    build_electra_releases,
    build_minilm_electra,
)
from .fixture_cache import cached
from .mutations import swapped, verify_fails_at
from .test_bert import _transformers_own_conversion


def _assert_exact(out, oracle):
    """Every written tensor equals the oracle's; what is not written is a declared tie."""
    ours = load_file(str(out / "model.safetensors"))
    for name, value in ours.items():
        np.testing.assert_array_equal(value, oracle[name], err_msg=name)
    tied = {t["name"] for t in read_json(out / "conversion_report.json")["target_parameters"]}
    assert set(oracle) - set(ours) <= tied


def _convert(src, out, *extra):
    code, stdout, err = run_cli(["convert", str(src), str(out), *extra])
    assert code == 0, err
    return stdout + err


@pytest.fixture(scope="session")
def electra_h5():
    """One tf_model.h5 per head (embedding_size 16 ≠ hidden_size 32), and a discriminator whose
    embeddings are as wide as its encoder (no projection, as ELECTRA-base/large)."""
    root = cached("tf-electra-heads", build_electra_heads, first_seed=70)
    return {name: root / name for name in [*ELECTRA_HEAD_CLASSES, "same-width"]}


electra_h5_converted = conversions_of("electra_h5")


@pytest.mark.parametrize("head", list(ELECTRA_HEAD_CLASSES))
def test_hf_keras_electra_head_converts_exactly_and_verifies(
    head, electra_h5, electra_h5_converted
):
    out, cls = electra_h5_converted[head], ELECTRA_HEAD_CLASSES[head]
    report = read_json(out / "conversion_report.json")
    assert (report["table"], report["head"], report["class"]) == ("electra-hf-keras", head, cls)
    assert report["counts"]["unexpected"] == report["counts"]["missing"] == 0
    parity = read_json(out / "parity_report.json")
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-5
    assert parity["reference"] == f"transformers' TF{cls}"
    _assert_exact(out, _transformers_own_conversion(electra_h5[head], cls))
    model, info = getattr(transformers, cls).from_pretrained(str(out), output_loading_info=True)
    assert all(not v for v in info.values()), info


def test_embeddings_project_is_converted_only_when_the_widths_differ(electra_h5_converted):
    projected = load_file(str(electra_h5_converted["pretraining"] / "model.safetensors"))
    assert projected["electra.embeddings_project.weight"].shape == (32, 16)
    same = electra_h5_converted["same-width"]
    assert not any("embeddings_project" in k for k in load_file(str(same / "model.safetensors")))
    assert read_json(same / "parity_report.json")["passed"]
    model, info = transformers.ElectraForPreTraining.from_pretrained(
        str(same), output_loading_info=True
    )
    assert all(not v for v in info.values()) and not hasattr(model.electra, "embeddings_project")


def test_generator_lm_head_is_tied_to_the_word_embeddings_and_its_stored_copy_checked(
    electra_h5_converted,
):
    report = read_json(electra_h5_converted["masked-lm"] / "conversion_report.json")
    tied = {t["name"]: t.get("same_as") for t in report["target_parameters"]}
    assert tied["generator_lm_head.weight"] == "electra.embeddings.word_embeddings.weight"
    copies = [t for t in report["source_tensors"] if t["fate"] == "duplicate"]
    assert len(copies) == 5 and all(t["name"].startswith("generator_lm_head/") for t in copies)
    assert all(t["checked"] == "equal" for t in copies)


def test_electra_sequence_classifier_is_dense_gelu_out_proj_without_a_pooler(
    electra_h5_converted,
):
    written = load_file(str(electra_h5_converted["sequence-classification"] / "model.safetensors"))
    assert {k for k in written if k.startswith("classifier.")} == {
        "classifier.dense.weight",
        "classifier.dense.bias",
        "classifier.out_proj.weight",
        "classifier.out_proj.bias",
    }
    assert not any("pooler" in k for k in written)
    config = read_json(electra_h5_converted["sequence-classification"] / "config.json")
    assert len(config["id2label"]) == 3 and config["model_type"] == "electra"


# --- mutations that `tf2pt verify` must catch ---


def swap_query_and_key(layer: int):
    """A mutation: one layer's query and key change places, weights and biases alike."""
    attention = f"electra.encoder.layer.{layer}.attention.self."
    return swapped(attention + "query", attention + "key")


def test_hf_keras_swapped_query_and_key_are_caught(electra_h5, electra_h5_converted, tmp_path):
    out = mutated_copy(electra_h5_converted["pretraining"], tmp_path / "m", swap_query_and_key(1))
    verify_fails_at(electra_h5["pretraining"], out, "hidden_states[2]")


def test_hf_keras_untransposed_discriminator_dense_is_caught(
    electra_h5, electra_h5_converted, tmp_path
):
    def untranspose(t):  # square [hidden, hidden]: the shape check cannot see it
        name = "discriminator_predictions.dense.weight"
        t[name] = np.ascontiguousarray(t[name].T)

    out = mutated_copy(electra_h5_converted["pretraining"], tmp_path / "m", untranspose)
    verify_fails_at(electra_h5["pretraining"], out, "logits")


# --- transformers 5 ---

LOAD_IN_V5 = r"""
import json, sys
import numpy as np, torch, transformers
ids = torch.from_numpy(np.load(sys.argv[1]))
for out_dir in sys.argv[2:]:
    cls = getattr(transformers, json.load(open(out_dir + "/config.json"))["architectures"][0])
    model, info = cls.from_pretrained(out_dir, output_loading_info=True)
    model.eval()
    batch = ids[:, None].repeat(1, 2, 1) if cls.__name__.endswith("MultipleChoice") else ids
    with torch.no_grad():
        logits = model(input_ids=batch, attention_mask=(batch != 0).long())[0]
    np.save(out_dir + "/v5_logits.npy", logits.numpy())
    problems = {k: list(v) for k, v in info.items() if v}
    meta = [n for n, p in model.named_parameters() if p.device.type == "meta"]
    print(json.dumps({"dir": out_dir, "version": transformers.__version__,
                      "problems": problems, "meta": meta}))
"""
V5_IDS = np.array([[2, 5, 6, 7, 8, 3], [2, 9, 10, 3, 0, 0]], dtype=np.int64)


def loads_strictly_in_transformers_5(out_dirs, tmp_path, hf5):
    """Every output loads in transformers 5 with nothing missing, unexpected or on `meta`, and
    its first output equals transformers 4.57's on the same ids (one script for all)."""
    import torch

    np.save(tmp_path / "ids.npy", V5_IDS)
    run = hf5.run(LOAD_IN_V5, tmp_path / "ids.npy", *out_dirs)
    assert run.returncode == 0, run.stderr
    results = [json.loads(line) for line in run.stdout.strip().splitlines()]
    assert len(results) == len(out_dirs)
    for out_dir, result in zip(out_dirs, results, strict=True):
        assert result["version"].startswith("5.")
        assert result["problems"] == {} and result["meta"] == [], result
        cls = getattr(transformers, read_json(out_dir / "config.json")["architectures"][0])
        model = cls.from_pretrained(str(out_dir)).eval()
        ids = torch.from_numpy(V5_IDS)
        batch = ids[:, None].repeat(1, 2, 1) if cls.__name__.endswith("MultipleChoice") else ids
        with torch.no_grad():
            ours = model(input_ids=batch, attention_mask=(batch != 0).long())[0].numpy()
        v5 = np.load(out_dir / "v5_logits.npy")
        (out_dir / "v5_logits.npy").unlink()
        np.testing.assert_allclose(v5, ours, atol=1e-5, rtol=0, err_msg=str(out_dir))


def test_every_electra_output_loads_strictly_and_matches_in_transformers_5(
    electra_h5_converted, electra_tf1_converted, tmp_path, hf5
):
    converted = [*electra_h5_converted.values(), *electra_tf1_converted.values()]
    # copies: the check writes transformers 5's logits beside each model
    outs = [copy_tree(out, tmp_path / f"{i}-{out.name}") for i, out in enumerate(converted)]
    loads_strictly_in_transformers_5(outs, tmp_path, hf5)


# --- real trained weights ---


def _passes_the_measured_gate_exactly(out, trained: dict) -> None:
    parity = read_json(out / "parity_report.json")
    assert parity["passed"] and parity["gate"]["kind"] == "measured-noise"
    assert all(o["noise"] > 0 and o["max_abs_diff"] <= o["tolerance"] for o in parity["outputs"])
    written = load_file(str(out / "model.safetensors"))
    for name, value in trained.items():
        np.testing.assert_array_equal(written[name], value, err_msg=name)


def test_trained_minilm_encoder_as_electra_passes_the_default_gate(tmp_path):
    """At real activation scale, through both layouts: the h5 of TFElectraForPreTraining, and a
    run_pretraining.py checkpoint whose discriminator is the trained encoder (its generator,
    128 wide over the same 384-wide embeddings, from TFElectraForMaskedLM's initialiser), checked
    against the tf1-encoder reference (the exact erf gelu, no projection: as ELECTRA-base)."""
    sources = cached("minilm-electra", build_minilm_electra)
    trained = load_file(str(sources / "pt" / "model.safetensors"))
    _convert(sources / "h5", tmp_path / "out")
    _passes_the_measured_gate_exactly(tmp_path / "out", trained)
    _convert(sources / "tf1", tmp_path / "tf1-out")
    _passes_the_measured_gate_exactly(tmp_path / "tf1-out", trained)


# --- google-research/electra TF1 checkpoints (no config file) ---


@pytest.fixture(scope="session")
def electra_tf1():
    """Per release shape: a run_pretraining.py checkpoint (discriminator + generator + Adam
    slots + global_step, vocab.txt, no config) written by TF's Saver from TFElectra* weights,
    next to the TFElectra* models it came from (`<name>/discriminator-hf`, `…/generator-hf`)."""
    root = cached("tf1-electra", build_electra_releases, first_seed=90)
    return {name: root / name / "release" for name in RELEASES}


@pytest.fixture(scope="session")
def electra_tf1_converted(electra_tf1, tmp_path_factory):
    """(release, head) → the verified output of `tf2pt convert` (the default head, and the
    generator through --head masked-lm)."""
    sources = {(name, head): src for name, src in electra_tf1.items() for head in TF1_MODELS}
    args = {key: ["--head", key[1]] for key in sources if key[1] != "pretraining"}
    return convert_once(tmp_path_factory, "electra_tf1_converted", sources, args)


TF1_MODELS = {"pretraining": "discriminator", "masked-lm": "generator"}


@pytest.mark.parametrize("release", list(RELEASES))
@pytest.mark.parametrize("head", list(TF1_MODELS))
def test_tf1_release_converts_exactly_loads_strictly_and_verifies(
    release, head, electra_tf1, electra_tf1_converted
):
    out, cls = electra_tf1_converted[release, head], ELECTRA_HEAD_CLASSES[head]
    report = read_json(out / "conversion_report.json")
    assert (report["table"], report["head"], report["class"]) == ("electra-tf1", head, cls)
    assert report["source"]["layout"] == "tf1-checkpoint"
    parity = read_json(out / "parity_report.json")
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-5
    assert "TF1 reference encoder" in parity["reference"]
    hf_dir = electra_tf1[release].parent / f"{TF1_MODELS[head]}-hf"
    _assert_exact(out, _transformers_own_conversion(hf_dir, cls))
    model, info = getattr(transformers, cls).from_pretrained(str(out), output_loading_info=True)
    assert all(not v for v in info.values()), info
    assert (out / "vocab.txt").read_text() == (electra_tf1[release] / "vocab.txt").read_text()


def test_tf1_sizes_come_from_the_tensors_with_a_head_per_64_units(electra_tf1_converted):
    """The release has no config: every size is read from a tensor's shape, the head count is
    run_pretraining.py's hidden_size / 64, and modeling.py's exact gelu and eps are written."""
    expected = {  # what build_release_pair gave transformers' TFElectra* classes
        ("small", "pretraining"): dict(embedding_size=32, hidden_size=128, num_attention_heads=2),
        ("small", "masked-lm"): dict(embedding_size=32, hidden_size=64, num_attention_heads=1),
        ("base", "pretraining"): dict(embedding_size=128, hidden_size=128, num_attention_heads=2),
        ("base", "masked-lm"): dict(embedding_size=128, hidden_size=64, num_attention_heads=1),
    }
    for key, sizes in expected.items():
        config = read_json(electra_tf1_converted[key] / "config.json")
        for name, value in sizes.items():
            assert config[name] == value, (key, name)
        assert config["num_hidden_layers"] == 2 and config["vocab_size"] == 99
        assert config["hidden_act"] == "gelu" and config["layer_norm_eps"] == 1e-12
        assert config["model_type"] == "electra"
        written = load_file(str(electra_tf1_converted[key] / "model.safetensors"))
        projected = "electra.embeddings_project.weight" in written
        assert projected == (sizes["embedding_size"] != sizes["hidden_size"]), key


def test_tf1_each_head_accounts_for_the_other_model_and_the_optimizer_with_reasons(
    electra_tf1_converted,
):
    for (release, head), out in electra_tf1_converted.items():
        report = read_json(out / "conversion_report.json")
        ignored = {
            t["name"]: t["reason"] for t in report["source_tensors"] if t["fate"] == "ignored"
        }
        other = "generator" if head == "pretraining" else "discriminator"
        models = [n for n in ignored if not n.endswith(("adam_m", "adam_v", "global_step"))]
        assert models and all(other in ignored[n] for n in models), (release, head)
        slots = [n for n in ignored if n.endswith(("adam_m", "adam_v"))]
        # every variable has its two slots, and there is one global_step
        assert 3 * len(slots) == 2 * (report["counts"]["source_tensors"] - 1)
        assert "step counter" in ignored["global_step"]
        assert report["counts"]["unexpected"] == report["counts"]["missing"] == 0


@pytest.mark.parametrize("head", list(TF1_MODELS))
def test_tf1_reference_equals_transformers_tf_electra_on_the_same_weights(head, electra_tf1):
    """The table's tf1-encoder reference (modeling.py on the release's own names, projection
    included) computes what TFElectraForPreTraining / TFElectraForMaskedLM compute."""
    from converter.plan.analysis import analyse
    from converter.verify.inputs import make_inputs
    from converter.verify.tf1_encoder import Tf1EncoderRunner

    analysis = analyse(electra_tf1["small"], head=head)
    runner = Tf1EncoderRunner(analysis.source, analysis.plan)
    assert runner.project  # the small release projects both models' embeddings
    hf_dir = electra_tf1["small"].parent / f"{TF1_MODELS[head]}-hf"
    tf_model = getattr(transformers, "TF" + ELECTRA_HEAD_CLASSES[head]).from_pretrained(hf_dir)
    for batch in make_inputs(analysis.plan.dims, 0).batches:
        ours = runner.run(batch)
        theirs = tf_model(**batch.as_dict(), output_hidden_states=True, training=False)
        mask = batch.flat_mask()
        for i, h in enumerate(theirs.hidden_states):
            got = ours[f"hidden_states[{i}]"][mask]
            np.testing.assert_allclose(got, np.asarray(h)[mask], atol=1e-5, rtol=0)
        logits = np.asarray(theirs.logits)[mask]
        np.testing.assert_allclose(ours["logits"][mask], logits, atol=1e-5, rtol=0)


def test_tf1_verify_passes_unchanged_and_catches_tanh_gelu(
    electra_tf1, electra_tf1_converted, tmp_path
):
    """modeling.py's gelu is the erf form: an output claiming gelu_new (what a converter that
    treats ELECTRA like google-research/bert writes) fails at the first layer."""
    src, converted = electra_tf1["small"], electra_tf1_converted["small", "pretraining"]
    out = copy_tree(converted, tmp_path / "out")  # verify writes its reports into it
    code, _, err = run_cli(["verify", str(src), str(out)])
    assert code == 0 and "parity passed" in err, err

    def tanh_gelu(config):
        config["hidden_act"] = "gelu_new"

    mutated = mutated_copy(out, tmp_path / "m", None, tanh_gelu)
    verify_fails_at(src, mutated, "hidden_states[1]")


def test_tf1_generator_with_swapped_query_and_key_is_caught(
    electra_tf1, electra_tf1_converted, tmp_path
):
    """verify finds the head in the output's config: the generator's sizes and encoder."""
    converted = electra_tf1_converted["base", "masked-lm"]
    out = mutated_copy(converted, tmp_path / "m", swap_query_and_key(0))
    verify_fails_at(electra_tf1["base"], out, "hidden_states[1]")


def test_tf1_release_as_base_model_for_fine_tuning_verifies_and_doctor_loads_it(
    electra_tf1, tmp_path
):
    """--head base-model: the discriminator's encoder alone (what fine-tuning starts from),
    its replaced-token head and the generator ignored with reasons."""
    out = tmp_path / "base"
    _convert(electra_tf1["base"], out, "--head", "base-model")
    report = read_json(out / "conversion_report.json")
    assert report["class"] == "ElectraModel" and read_json(out / "parity_report.json")["passed"]
    reasons = {t["reason"] for t in report["source_tensors"] if t["fate"] == "ignored"}
    assert any("replaced-token head" in r for r in reasons)
    code, stdout, err = run_cli(["doctor", str(out), "--arch", "electra"])
    assert code == 0 and "loads cleanly" in stdout + err, stdout + err


def test_archs_and_inspect_show_electra_tables_and_the_generator_sizes(electra_tf1):
    code, stdout, _ = run_cli(["archs"])
    assert code == 0
    for line in ("electra-hf-keras:", "electra-tf1:", "pretraining (ElectraForPreTraining)"):
        assert line in stdout
    assert "masked-lm (ElectraForMaskedLM)" in stdout.split("electra-tf1:")[1]
    code, stdout, err = run_cli(["inspect", str(electra_tf1["small"]), "--head", "masked-lm"])
    assert code == 0, err
    assert "table:   electra-tf1" in stdout and "ElectraForMaskedLM" in stdout
    assert "hidden_size=64" in stdout and "num_attention_heads=1" in stdout
