"""ALBERT: transformers' TFAlbert* saves and google-research/albert TF1 checkpoints convert with
every tensor exact through mappings/albert-*.yaml alone, load strictly in transformers 4.57 and 5,
and verify against their TF references; verify catches real bugs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import transformers
from safetensors.numpy import load_file

from .albert_fixtures import (
    ALBERT_HEAD_CLASSES,
    TF1_KINDS,
    build_albert_heads,
    build_albert_tf1_checkpoints,
    build_minilm_albert,
    build_tf_albert,
    save_albert_tf1_checkpoint,
)
from .conftest import conversions_of, convert_once, copy_tree, mutated_copy, read_json, run_cli
from .fixture_cache import cached
from .mutations import swapped, verify_fails_at
from .test_bert import _transformers_own_conversion

TIED = {"predictions.decoder.weight", "predictions.decoder.bias"}


@pytest.fixture(scope="session")
def albert_h5():
    """One tf_model.h5 per head; multiple choice with two layer groups of two inner layers; the
    pretraining one with its HF tokenizer beside it."""
    root = cached("tf-albert-heads", build_albert_heads, first_seed=70)
    return {head: root / head for head in ALBERT_HEAD_CLASSES}


albert_h5_converted = conversions_of("albert_h5")


def _tf_weights(tf_dir, class_name):
    """The TF model's own variables by their in-memory names (the independent side)."""
    model = getattr(transformers, "TF" + class_name).from_pretrained(str(tf_dir))
    return {w.name.split("/", 1)[1].removesuffix(":0"): w.numpy() for w in model.weights}


@pytest.mark.parametrize("head", list(ALBERT_HEAD_CLASSES))
def test_hf_keras_albert_head_converts_exactly_loads_strictly_and_verifies(
    head, albert_h5, albert_h5_converted
):
    out = albert_h5_converted[head]
    report = read_json(out / "conversion_report.json")
    assert report["table"] == "albert-hf-keras"
    assert report["head"] == head and report["class"] == ALBERT_HEAD_CLASSES[head]
    assert report["counts"]["unexpected"] == 0 and report["counts"]["missing"] == 0
    parity = read_json(out / "parity_report.json")
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-5
    assert parity["reference"] == f"transformers' TF{ALBERT_HEAD_CLASSES[head]}"
    assert not parity["not_compared"]
    _, info = getattr(transformers, ALBERT_HEAD_CLASSES[head]).from_pretrained(
        str(out), output_loading_info=True
    )
    assert all(not v for v in info.values()), info
    _assert_equals_transformers_own_conversion(out, albert_h5[head], ALBERT_HEAD_CLASSES[head])


def _assert_equals_transformers_own_conversion(out, tf_dir, class_name):
    """Every written tensor equals what transformers' own TF→PyTorch loader makes of the TF
    model (an independent oracle), except the masked-LM bias: that loader takes TFAlbertMLMHead's
    unused `bias`, where the TF logits add `decoder/bias`."""
    oracle = _transformers_own_conversion(tf_dir, class_name)
    ours = load_file(str(out / "model.safetensors"))
    assert set(oracle) - set(ours) <= TIED | {"albert.embeddings.position_ids"}
    for name, value in ours.items():
        if name != "predictions.bias":
            np.testing.assert_array_equal(value, oracle[name], err_msg=name)


def test_masked_lm_decoder_is_tied_to_the_factorised_word_embeddings_and_adds_the_decoder_bias(
    albert_h5, albert_h5_converted
):
    """TFAlbertMLMHead stores two biases and adds only `decoder/bias`; the fixture gives them
    different values, so taking the other one would also fail parity."""
    theirs = _tf_weights(albert_h5["masked-lm"], "AlbertForMaskedLM")
    assert not np.array_equal(theirs["predictions/bias"], theirs["predictions/decoder/bias"])
    ours = load_file(str(albert_h5_converted["masked-lm"] / "model.safetensors"))
    np.testing.assert_array_equal(ours["predictions.bias"], theirs["predictions/decoder/bias"])
    oracle = _transformers_own_conversion(albert_h5["masked-lm"], "AlbertForMaskedLM")
    assert not np.array_equal(oracle["predictions.bias"], ours["predictions.bias"])
    assert "predictions.decoder.weight" not in ours  # tied: written once
    words = ours["albert.embeddings.word_embeddings.weight"]
    assert words.shape == (99, 16)  # embedding_size wide, not hidden_size
    model = transformers.AlbertForMaskedLM.from_pretrained(str(albert_h5_converted["masked-lm"]))
    assert (
        model.predictions.decoder.weight.data_ptr()
        == model.albert.embeddings.word_embeddings.weight.data_ptr()
    )
    report = read_json(albert_h5_converted["masked-lm"] / "conversion_report.json")
    fates = {t["name"]: t for t in report["source_tensors"]}
    assert fates["predictions/bias"]["fate"] == "ignored"
    assert "never used" in fates["predictions/bias"]["reason"]
    assert fates["predictions/albert/embeddings/word_embeddings/weight"]["fate"] == "duplicate"


def test_shared_layer_groups_map_by_group_and_inner_layer_not_by_layer(albert_h5_converted):
    """4 layers through 2 groups of 2 inner layers: 4 sets of layer weights, indexed {G}.{I}."""
    ours = load_file(str(albert_h5_converted["multiple-choice"] / "model.safetensors"))
    layers = {
        k.split(".albert_layers.")[0][-1] + k.split(".albert_layers.")[1][0]
        for k in ours
        if ".albert_layers." in k
    }
    assert layers == {"00", "01", "10", "11"}
    config = read_json(albert_h5_converted["multiple-choice"] / "config.json")
    assert (
        config["num_hidden_layers"],
        config["num_hidden_groups"],
        config["inner_group_num"],
    ) == (4, 2, 2)


def test_sentencepiece_tokenizer_is_copied_whole_and_proven(albert_h5, albert_h5_converted):
    """An ALBERT tokenizer dir holds spiece.model (the slow tokenizer's only file) besides
    tokenizer.json: both reach the output, and both give the source tokenizer's ids."""
    out = albert_h5_converted["pretraining"]
    for name in ("spiece.model", "tokenizer.json", "tokenizer_config.json"):
        assert (out / name).read_bytes() == (albert_h5["pretraining"] / name).read_bytes(), name
    parity = read_json(out / "conversion_report.json")["tokenizer"]["parity"]
    assert parity["passed"] and parity["rows_compared"] > 20
    assert parity["rows_equal"] == parity["rows_compared"]
    source = transformers.AlbertTokenizerFast.from_pretrained(str(albert_h5["pretraining"]))
    slow = transformers.AlbertTokenizer.from_pretrained(str(out))
    for text in ("Hello ALBERT world", "quick groups, lazy layers!"):
        assert slow(text)["input_ids"] == source(text)["input_ids"]


# --- verify catches real bugs (tiny models: these prove the check runs, the real-scale case
# below proves the gate does not cry wolf) ---


def _shared(role: str, group: int = 0, inner: int = 0, prefix: str = "albert.") -> str:
    return f"{prefix}encoder.albert_layer_groups.{group}.albert_layers.{inner}.{role}"


def test_swapped_query_and_key_of_a_shared_layer_are_caught(
    albert_h5, albert_h5_converted, tmp_path
):
    swap = swapped(_shared("attention.query"), _shared("attention.key"))
    out = mutated_copy(albert_h5_converted["sequence-classification"], tmp_path / "m", swap)
    verify_fails_at(albert_h5["sequence-classification"], out, "hidden_states[1]")


def test_dropped_transpose_of_the_square_attention_output_is_caught(
    albert_h5, albert_h5_converted, tmp_path
):
    """attention.dense is [hidden, hidden]: a forgotten transpose keeps the shape, so only
    parity can see it."""

    name = _shared("attention.dense.weight", prefix="")  # AlbertModel: no "albert."

    def untranspose(t):
        t[name] = np.ascontiguousarray(t[name].T)

    out = mutated_copy(albert_h5_converted["base-model"], tmp_path / "m", untranspose)
    verify_fails_at(albert_h5["base-model"], out, "hidden_states[1]")


def test_shared_group_of_the_second_half_taken_from_the_first_is_caught(
    albert_h5, albert_h5_converted, tmp_path
):
    """Layers 2 and 3 run group 1: group 1 given group 0's weights diverges first there."""

    def collapse(t):
        for name in [k for k in t if ".albert_layer_groups.1." in k]:
            t[name] = t[name.replace(".albert_layer_groups.1.", ".albert_layer_groups.0.")]

    out = mutated_copy(albert_h5_converted["multiple-choice"], tmp_path / "m", collapse)
    verify_fails_at(albert_h5["multiple-choice"], out, "hidden_states[3]")


# --- the CLI around the tables ---


def test_archs_lists_albert_with_every_head_and_both_layouts():
    code, out, err = run_cli(["archs"])
    assert code == 0, err
    for table, classes in {
        "albert-hf-keras": ALBERT_HEAD_CLASSES.values(),
        "albert-tf1": [
            "AlbertModel",
            "AlbertForPreTraining",
            "AlbertForSequenceClassification",
            "AlbertForQuestionAnswering",
        ],
    }.items():
        lines = ("\n" + out).split("\n" + table + ":", 1)[1].splitlines()[1:]
        block = "\n".join(line for line in lines[:2] if line.startswith("  "))
        assert all(f"({c})" in block for c in classes), block


def test_doctor_says_a_converted_albert_loads_as_is(albert_h5_converted, albert_tf1_converted):
    for out, args in [
        (albert_h5_converted["pretraining"], ["--model", str(albert_h5_converted["pretraining"])]),
        (albert_tf1_converted["squad"], ["--arch", "albert"]),
    ]:
        code, stdout, err = run_cli(["doctor", str(out / "model.safetensors"), *args])
        assert code == 0, err
        assert " key(s) load unchanged" in stdout, stdout
        assert stdout.strip().splitlines()[-1] == "verdict: loads cleanly"


# --- google-research/albert TF1 checkpoints ---


@pytest.fixture(scope="session")
def albert_tf1():
    """TF1 checkpoints written by TF's Saver from TFAlbert* weights (gelu_new: modeling.py's
    "gelu"), with the optimizer's slots and global_step; the TFAlbert* dir is kept beside."""
    root = cached("tf1-albert", build_albert_tf1_checkpoints, first_seed=90)
    return {kind: root / kind for kind in TF1_KINDS}


albert_tf1_converted = conversions_of("albert_tf1")


@pytest.mark.parametrize("kind", list(TF1_KINDS))
def test_tf1_albert_checkpoint_converts_exactly_loads_strictly_and_verifies(
    kind, albert_tf1, albert_tf1_converted
):
    out = albert_tf1_converted[kind]
    class_name = TF1_KINDS[kind][0]
    report = read_json(out / "conversion_report.json")
    assert (report["table"], report["class"]) == ("albert-tf1", class_name)
    ignored = [t for t in report["source_tensors"] if t["fate"] == "ignored"]
    assert len(ignored) == 2 * report["counts"]["mapped"] + 1  # adam_m, adam_v; global_step
    parity = read_json(out / "parity_report.json")
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-5 and not parity["not_compared"]
    assert "TF1 reference encoder" in parity["reference"]
    model, info = getattr(transformers, class_name).from_pretrained(
        str(out), output_loading_info=True
    )
    assert all(not v for v in info.values()), info
    # The checkpoint was written from this TFAlbert* model: the converted model must hold its
    # weights, bit for bit (the tied MLM bias is the one TF adds, decoder/bias).
    hf_dir = albert_tf1[kind].parent / f"{kind}-hf"
    _assert_equals_transformers_own_conversion(out, hf_dir, class_name)
    config = read_json(out / "config.json")
    assert (config["hidden_act"], config["layer_norm_eps"], config["model_type"]) == (
        "gelu_new",
        1e-12,
        "albert",
    )


@pytest.mark.parametrize("kind", ["pretraining", "classifier"])
def test_tf1_reference_declared_by_the_table_equals_transformers_tf_albert(kind, albert_tf1):
    """The reference albert-tf1.yaml declares (the generic tf1-encoder on the checkpoint's own
    names: one shared block per group, the embedding projection) computes what TFAlbert*
    computes on the same weights, with gelu_new, modeling.py's "gelu"."""
    from converter.plan.analysis import analyse
    from converter.verify.inputs import make_inputs
    from converter.verify.runners import declared_runner

    analysis = analyse(albert_tf1[kind])
    runner = declared_runner(analysis.plan)(analysis.source, analysis.plan)
    class_name = TF1_KINDS[kind][0]
    hf_dir = albert_tf1[kind].parent / f"{kind}-hf"
    tf_model = getattr(transformers, "TF" + class_name).from_pretrained(str(hf_dir))
    head = "prediction_logits" if kind == "pretraining" else "logits"
    for batch in make_inputs(analysis.plan.dims, 0).batches:
        ours = runner.run(batch)
        theirs = tf_model(**batch.as_dict(), output_hidden_states=True, training=False)
        mask = batch.flat_mask()
        assert len(theirs.hidden_states) == analysis.plan.dims["num_hidden_layers"] + 1
        for i, h in enumerate(theirs.hidden_states):
            np.testing.assert_allclose(
                ours[f"hidden_states[{i}]"][mask], np.asarray(h)[mask], atol=1e-5, rtol=0
            )
        np.testing.assert_allclose(ours[head], np.asarray(theirs[head]), atol=1e-5, rtol=0)


def test_tf1_wrong_layer_norm_eps_is_caught_at_the_embeddings(
    albert_tf1, albert_tf1_converted, tmp_path
):
    out = mutated_copy(
        albert_tf1_converted["pretraining"],
        tmp_path / "m",
        mutate_config=lambda c: c.update(layer_norm_eps=1e-5),
    )
    verify_fails_at(albert_tf1["pretraining"], out, "hidden_states[0]")


def test_tf1_layer_groups_in_the_wrong_order_are_caught(albert_tf1, albert_tf1_converted, tmp_path):
    """Layers 0 and 1 run group_0: groups 0 and 1 swapped diverge at the first layer."""

    def swap_groups(t):
        for name in [k for k in t if ".albert_layer_groups.0." in k]:
            other = name.replace(".albert_layer_groups.0.", ".albert_layer_groups.1.")
            t[name], t[other] = t[other], t[name]

    out = mutated_copy(albert_tf1_converted["classifier"], tmp_path / "m", swap_groups)
    verify_fails_at(albert_tf1["classifier"], out, "hidden_states[1]")


def test_tf1_checkpoint_with_two_blocks_per_group_is_refused_naming_them(tmp_path):
    """inner_group_num > 1 (no release has it): the second block's variables are unexpected."""
    model = build_tf_albert(tmp_path / "hf", "AlbertModel", seed=5, inner_group_num=2)
    src = save_albert_tf1_checkpoint(model, tmp_path / "tf1")
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out"), "--no-verify"])
    assert code == 1 and "Traceback" not in err
    assert "unexpected  bert/encoder/transformer/group_0/inner_group_1/LayerNorm/beta" in err
    assert not (tmp_path / "out").exists()


def test_tf1_table_is_chosen_by_fit_bert_stays_bert_and_albert_is_albert(
    albert_tf1, tf1_checkpoints
):
    """Neither bert_config.json nor albert_config.json names a model_type, and both keep their
    variables under bert/: the tensor names alone choose the table."""
    expected = {
        tf1_checkpoints["encoder"]: ("bert-tf1", "BertModel"),
        tf1_checkpoints["pretraining"]: ("bert-tf1", "BertForPreTraining"),
        albert_tf1["classifier"]: ("albert-tf1", "AlbertForSequenceClassification"),
        albert_tf1["pretraining"]: ("albert-tf1", "AlbertForPreTraining"),
    }
    for src, (table, class_name) in expected.items():
        assert "model_type" not in json.dumps([read_json(p) for p in src.glob("*config.json")])
        code, out, err = run_cli(["inspect", str(src), "--json"])
        assert code == 0, err
        found = json.loads(out)
        assert (found["table"], found["class"], found["clean"]) == (table, class_name, True)


def test_tf1_pretraining_checkpoint_forced_to_classifier_names_the_unplaced_heads(
    albert_tf1, tmp_path
):
    code, _, err = run_cli(
        [
            "convert",
            str(albert_tf1["pretraining"]),
            str(tmp_path / "out"),
            "--head",
            "sequence-classification",
        ]
    )
    assert code == 1 and "Traceback" not in err
    assert "unexpected  cls/seq_relationship/output_weights [2, 32]" in err
    assert "missing     classifier.weight (from source 'output_weights')" in err
    assert not (tmp_path / "out").exists()


# --- real trained weights ---


@pytest.fixture(scope="session")
def minilm_albert(tmp_path_factory):
    """all-MiniLM-L6-v2's trained tensors in TFAlbertForPreTraining (6 layer groups, identity
    projection, first 128 positions; MLM and sentence-order heads initialised by transformers,
    seeded), saved as tf_model.h5 and as a google-research/albert TF1 checkpoint, each converted
    with the default gate. Returns the PyTorch dir and form → (source, output)."""
    root = cached("minilm-albert", build_minilm_albert)
    sources = {form: root / form for form in ("h5", "tf1")}
    outs = convert_once(tmp_path_factory, "minilm_albert", sources)
    return root / "pt", {form: (sources[form], outs[form]) for form in sources}


@pytest.mark.parametrize("form", ["h5", "tf1"])
def test_trained_weights_in_an_albert_shell_pass_the_default_gate_exactly(minilm_albert, form):
    """No false alarm at real activation scale, through transformers' TFAlbert* and through the
    table's TF1 reference running six layer groups."""
    pt_dir, forms = minilm_albert
    out = forms[form][1]
    parity = read_json(out / "parity_report.json")
    assert parity["passed"] and parity["gate"]["kind"] == "measured-noise"
    names = [o["name"] for o in parity["outputs"]]
    assert names == [f"hidden_states[{i}]" for i in range(7)] + ["prediction_logits", "sop_logits"]
    for o in parity["outputs"]:
        assert o["noise"] > 0 and o["max_abs_diff"] <= o["tolerance"], o
    trained = load_file(str(pt_dir / "model.safetensors"))
    ours = load_file(str(out / "model.safetensors"))
    assert len(ours) == len(trained) >= 100
    for name, value in trained.items():
        np.testing.assert_array_equal(ours[name], value, err_msg=name)


def test_tf1_gelu_copied_verbatim_as_exact_gelu_is_caught_at_real_scale(minilm_albert, tmp_path):
    """albert_config.json's "gelu" is the tanh form: a converter that copies it into
    config.json (transformers' exact gelu) diverges at the first layer."""
    src, out = minilm_albert[1]["tf1"]
    mutated = mutated_copy(out, tmp_path / "m", mutate_config=lambda c: c.update(hidden_act="gelu"))
    verify_fails_at(src, mutated, "hidden_states[1]")


# --- transformers 5 ---

LOAD_ALL_IN_HF5 = r"""
import json, sys
import numpy as np, torch, transformers
ids = torch.from_numpy(np.load(sys.argv[1]))
found = {"version": transformers.__version__}
for out_dir in sys.argv[2:]:
    config = json.load(open(out_dir + "/config.json"))
    model, info = getattr(transformers, config["architectures"][0]).from_pretrained(
        out_dir, output_loading_info=True)
    model.eval()
    feed = ids[None].repeat(1, 2, 1) if "MultipleChoice" in config["architectures"][0] else ids
    with torch.no_grad():
        result = model(input_ids=feed, attention_mask=(feed != 0).long())
    np.savez(out_dir + "/hf5.npz", **{k: v.numpy() for k, v in result.items()})
    found[out_dir] = {"problems": {k: list(v) for k, v in info.items() if v},
                      "meta": [n for n, p in model.named_parameters() if p.device.type == "meta"]}
print(json.dumps(found))
"""
IDS = np.array([[2, 5, 6, 7, 8, 3], [2, 9, 10, 3, 0, 0]], dtype=np.int64)


def test_albert_outputs_load_strictly_and_compute_the_same_in_transformers_5(
    albert_h5_converted, albert_tf1_converted, tmp_path, hf5
):
    """One transformers 5 script loads every converted ALBERT (h5 and TF1) strictly and runs
    it; its outputs equal transformers 4.57's on the same ids."""
    import torch

    outputs = {**albert_h5_converted, **{f"tf1-{k}": v for k, v in albert_tf1_converted.items()}}
    dirs = [copy_tree(out, tmp_path / name) for name, out in outputs.items()]
    np.save(tmp_path / "ids.npy", IDS)
    run = hf5.run(LOAD_ALL_IN_HF5, tmp_path / "ids.npy", *dirs, timeout=600)
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found.pop("version").startswith("5.")
    assert found == {str(d): {"problems": {}, "meta": []} for d in dirs}
    for d in dirs:
        class_name = read_json(d / "config.json")["architectures"][0]
        model = getattr(transformers, class_name).from_pretrained(str(d)).eval()
        feed = torch.from_numpy(IDS)
        if "MultipleChoice" in class_name:
            feed = feed[None].repeat(1, 2, 1)
        with torch.no_grad():
            ours = model(input_ids=feed, attention_mask=(feed != 0).long())
        v5 = np.load(d / "hf5.npz")
        assert set(v5.files) == {k for k, v in ours.items() if isinstance(v, torch.Tensor)}
        for key in v5.files:
            np.testing.assert_allclose(
                v5[key], ours[key].numpy(), atol=1e-5, rtol=0, err_msg=f"{d.name} {key}"
            )
