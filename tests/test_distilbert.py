"""DistilBERT (a table and tests, no Python of its own): every head saved by transformers'
TFDistilBert* converts from the CLI with every tensor exact, loads strictly in transformers 4.57
and 5, and verifies against its TF class; trained weights pass the default parity gate and real
bugs fail it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import transformers
from safetensors.numpy import load_file

from . import h5edit, real_models
from .conftest import (
    conversions_of,
    convert_once,
    copy_tree,
    mutated_copy,
    nothing_written,
    read_json,
    run_cli,
)
from .distilbert_fixtures import (
    DISTILBERT_HEAD_CLASSES,
    DISTILBERT_TINY,
    HEAD_SETTINGS,
    as_distilbert,
    build_distilbert_heads,
    build_minilm_distilbert,
)
from .fixture_cache import cached
from .mutations import swapped
from .test_bert import _transformers_own_conversion
from .test_real_scale import _assert_passed_by_the_measured_gate

REAL_POSITIONS = 128  # the trained positions kept, as in test_real_scale's every-head corpus
REAL_TEXT = "The cat sat on the mat, and DistilBERT's 6 layers read it twice."


@pytest.fixture(scope="session")
def distilbert_sources():
    root = cached("tf-distilbert-heads", build_distilbert_heads, first_seed=70)
    return {head: root / head for head in DISTILBERT_HEAD_CLASSES}


distilbert_converted = conversions_of("distilbert_sources")


def _assert_tokenizer_parity(report: dict) -> None:
    parity = report["tokenizer"]["parity"]
    assert parity["passed"] and parity["rows_equal"] == parity["rows_compared"] > 0, parity


@pytest.mark.parametrize("head", list(DISTILBERT_HEAD_CLASSES))
def test_distilbert_head_converts_exactly_loads_strictly_and_verifies(
    head, distilbert_sources, distilbert_converted
):
    out, class_name = distilbert_converted[head], DISTILBERT_HEAD_CLASSES[head]
    report = read_json(out / "conversion_report.json")
    assert (report["table"], report["head"], report["class"]) == (
        "distilbert-hf-keras",
        head,
        class_name,
    )
    assert report["counts"]["unexpected"] == report["counts"]["missing"] == 0
    parity = read_json(out / "parity_report.json")
    assert parity["passed"] and parity["reference"] == f"transformers' TF{class_name}"
    assert not parity["inputs"]["token_type_ids"]  # DistilBERT has no token types
    # n_layers + 1 hidden states, then the head's outputs; no pooler
    names = [o["name"] for o in parity["outputs"]]
    assert names[: DISTILBERT_TINY["n_layers"] + 1] == [f"hidden_states[{i}]" for i in range(3)]
    assert "pooler_output" not in names
    assert len(names) > 3 or head == "base-model"
    # Independent oracle: transformers' own TF→PyTorch loader on the same TF model.
    oracle = _transformers_own_conversion(distilbert_sources[head], class_name)
    ours = load_file(str(out / "model.safetensors"))
    tied = {t["name"] for t in report["target_parameters"] if t["how"] == "tied"}
    assert set(ours) | tied == set(oracle) and not set(ours) & tied
    for name, value in ours.items():
        np.testing.assert_array_equal(value, oracle[name], err_msg=name)
    _, info = getattr(transformers, class_name).from_pretrained(str(out), output_loading_info=True)
    assert all(not v for v in info.values()), info
    assert (out / "vocab.txt").read_text() == (distilbert_sources[head] / "vocab.txt").read_text()
    _assert_tokenizer_parity(report)


def test_written_config_keeps_distilberts_own_keys_and_dimensions(
    distilbert_sources, distilbert_converted
):
    for head, out in distilbert_converted.items():
        written = read_json(out / "config.json")
        source = read_json(distilbert_sources[head] / "config.json")
        for key in ("dim", "n_layers", "n_heads", "hidden_dim", "activation", "vocab_size"):
            assert written[key] == source[key], (head, key)
        assert written["model_type"] == "distilbert"
        assert written["architectures"] == [DISTILBERT_HEAD_CLASSES[head]]
        assert not {"hidden_size", "num_hidden_layers", "type_vocab_size"} & set(written)
        if head in ("sequence-classification", "token-classification"):
            assert len(written["id2label"]) == HEAD_SETTINGS[head]["num_labels"]
        config = transformers.AutoConfig.from_pretrained(str(out))
        assert (config.hidden_size, config.num_hidden_layers) == (32, 2)


def test_sinusoidal_flag_is_written_false_so_the_stored_position_table_stays(
    distilbert_sources, distilbert_converted
):
    """TFDistilBert* ignores sinusoidal_pos_embds and uses its stored (here random) table;
    parity passed on it, and the PyTorch config must not ask for computed sinusoids."""
    assert read_json(distilbert_sources["base-model"] / "config.json")["sinusoidal_pos_embds"]
    out = distilbert_converted["base-model"]
    assert read_json(out / "config.json")["sinusoidal_pos_embds"] is False
    assumed = read_json(out / "conversion_report.json")["assumptions"]
    flag = next(a for a in assumed if a["key"] == "sinusoidal_pos_embds")
    assert (flag["kind"], flag["source_value"], flag["value"]) == ("translated", True, False)


def test_masked_lm_projector_is_tied_to_word_embeddings_and_stored_copies_are_checked(
    distilbert_sources, distilbert_converted, tmp_path
):
    report = read_json(distilbert_converted["masked-lm"] / "conversion_report.json")
    tied = {t["name"]: t["same_as"] for t in report["target_parameters"] if t["how"] == "tied"}
    assert tied == {"vocab_projector.weight": "distilbert.embeddings.word_embeddings.weight"}
    copies = [t["name"] for t in report["source_tensors"] if t["fate"] == "duplicate"]
    assert len(copies) == 4 and all(c.startswith("vocab_projector/distilbert/") for c in copies)
    src = copy_tree(distilbert_sources["masked-lm"], tmp_path / "src")
    h5edit.scale_weight(src / "tf_model.h5", "vocab_projector", "word_embeddings/weight:0", 2.0)
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out"), "--no-verify"])
    assert code == 1 and "stored copy" in err and "Traceback" not in err
    assert nothing_written(tmp_path / "out")


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("n_layers", 3, "config says n_layers=3 but the weights hold 2 layers"),
        ("hidden_dim", 40, "config says hidden_dim=40 but"),
    ],
)
def test_config_that_contradicts_the_weights_is_refused(
    key, value, message, distilbert_sources, tmp_path
):
    src = copy_tree(distilbert_sources["token-classification"], tmp_path / "src")
    config = read_json(src / "config.json") | {key: value}
    (src / "config.json").write_text(json.dumps(config))
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out")])
    assert code == 1 and message in err and "Traceback" not in err, err
    assert nothing_written(tmp_path / "out")


LOAD_ALL = r"""
import json, sys
import numpy as np, torch, transformers


def first_outputs(out_dir, ids):
    cls = getattr(transformers, json.load(open(out_dir + "/config.json"))["architectures"][0])
    model, info = cls.from_pretrained(out_dir, output_loading_info=True)
    model.eval()
    feed = ids[None].repeat(2, 1, 1) if "MultipleChoice" in cls.__name__ else ids
    with torch.no_grad():
        result = model(input_ids=feed, attention_mask=(feed != 0).long())
    return {
        "problems": {k: list(v) for k, v in info.items() if v},
        "meta": [n for n, p in model.named_parameters() if p.device.type == "meta"],
        "first": result[0].flatten()[:64].tolist(),
    }


if __name__ == "__main__":
    ids = torch.from_numpy(np.load(sys.argv[1]))
    found = {out_dir: first_outputs(out_dir, ids) for out_dir in sys.argv[2:]}
    print(json.dumps({"version": transformers.__version__, **found}))
"""


def test_every_head_loads_strictly_and_computes_the_same_in_transformers_5(
    distilbert_converted, tmp_path, hf5
):
    """One transformers 5 script loads every head strictly; its first outputs equal those of
    the same script run here, in transformers 4.57."""
    import torch

    ids = np.array([[2, 5, 6, 7, 8, 3], [2, 9, 10, 3, 0, 0]], dtype=np.int64)
    np.save(tmp_path / "ids.npy", ids)
    outs = [str(p) for p in distilbert_converted.values()]
    run = hf5.run(LOAD_ALL, tmp_path / "ids.npy", *outs)
    assert run.returncode == 0, run.stderr
    v5 = json.loads(run.stdout.strip().splitlines()[-1])
    assert v5["version"].startswith("5.")
    here: dict = {}
    exec(LOAD_ALL, here)  # defines first_outputs; __name__ is not "__main__" here
    for out in outs:
        assert v5[out]["problems"] == {} and v5[out]["meta"] == [], out
        v4 = here["first_outputs"](out, torch.from_numpy(ids))
        assert v4["problems"] == {}, out
        np.testing.assert_allclose(v5[out]["first"], v4["first"], atol=1e-5, err_msg=out)


# --- mutations verify must catch (tiny models: every weight random, so nothing hides) ---


def _swap_q_and_k(layer: int):
    attention = f"distilbert.transformer.layer.{layer}.attention."
    return swapped(attention + "q_lin", attention + "k_lin")


def _untransposed(name: str):
    def mutate(tensors):
        tensors[name] = np.ascontiguousarray(tensors[name].T)

    return mutate


@pytest.mark.parametrize(
    "head,mutate,first",
    [
        ("sequence-classification", _swap_q_and_k(0), "hidden_states[1]"),
        (
            "question-answering",
            _untransposed("distilbert.transformer.layer.1.attention.out_lin.weight"),
            "hidden_states[2]",
        ),
        ("multiple-choice", _untransposed("pre_classifier.weight"), "logits"),
    ],
    ids=["q_lin and k_lin swapped", "out_lin kept in TF order", "pre_classifier kept in TF order"],
)
def test_verify_catches_a_broken_distilbert_conversion_where_it_first_shows(
    head, mutate, first, distilbert_sources, distilbert_converted, tmp_path
):
    out = mutated_copy(distilbert_converted[head], tmp_path / "mutated", mutate)
    code, _, err = run_cli(["verify", str(distilbert_sources[head]), str(out)])
    assert code == 1 and "parity failed" in err and "Traceback" not in err, err
    assert read_json(out / "parity_report.json")["first_divergence"]["name"] == first


@pytest.fixture(scope="module")
def data_parallel_state_dict(distilbert_converted, tmp_path_factory):
    """The converted classifier's state_dict as DataParallel saves it (`module.` prefixes),
    with no config beside it."""
    import torch

    out = distilbert_converted["sequence-classification"]
    model = transformers.DistilBertForSequenceClassification.from_pretrained(str(out))
    path = tmp_path_factory.mktemp("ddp") / "ddp.pt"
    torch.save(torch.nn.DataParallel(model).state_dict(), path)
    return path


def _assert_same_tensors(fixed, out) -> None:
    repaired = load_file(str(fixed / "model.safetensors"))
    for name, value in load_file(str(out / "model.safetensors")).items():
        np.testing.assert_array_equal(repaired[name], value, err_msg=name)


def test_doctor_says_a_converted_dir_loads_and_repairs_a_data_parallel_state_dict(
    distilbert_converted, data_parallel_state_dict, tmp_path
):
    out = distilbert_converted["sequence-classification"]
    code, text, err = run_cli(["doctor", str(out)])
    assert code == 0 and "verdict: loads cleanly" in text, text + err
    fixed = tmp_path / "fixed"
    argv = ["doctor", str(data_parallel_state_dict), "--model", str(out), "--fix", str(fixed)]
    code, text, err = run_cli(argv)
    assert code == 0 and "verdict: loads after repair" in text and "strip-module" in text, err
    _assert_same_tensors(fixed, out)


def test_doctor_without_a_config_reads_distilberts_dimensions_and_guesses_heads_from_dim(
    distilbert_converted, data_parallel_state_dict, tmp_path
):
    """No config: dim, hidden_dim, n_layers and the label count come from the weights by the
    table's shapes; the head count is a guess (dim / 64, here 1 — wrong, so said so and
    refused) until --set gives it."""
    ddp = str(data_parallel_state_dict)
    code, text, _ = run_cli(["doctor", ddp, "--arch", "distilbert"])
    assert code == 1 and "n_heads=1 (guessed as dim / 64)" in text, text
    assert "DistilBertForSequenceClassification" in text  # the head that fits the keys best
    fixed = tmp_path / "fixed"
    argv = ["doctor", ddp, "--arch", "distilbert", "--set", "n_heads=4", "--fix", str(fixed)]
    code, text, err = run_cli(argv)
    assert code == 0 and "verdict: loads after repair;" in text, text + err
    out = distilbert_converted["sequence-classification"]
    written, converted = read_json(fixed / "config.json"), read_json(out / "config.json")
    for key in ("dim", "hidden_dim", "n_layers", "n_heads", "activation", "vocab_size"):
        assert written[key] == converted[key], key
    assert written["architectures"] == ["DistilBertForSequenceClassification"]
    _assert_same_tensors(fixed, out)


def test_archs_and_inspect_show_the_distilbert_table(distilbert_sources):
    code, text, _ = run_cli(["archs"])
    assert code == 0
    lines = text.splitlines()  # keras-hub's DistilBERT table lists the same classes: take ours
    start = lines.index(next(ln for ln in lines if ln.startswith("distilbert-hf-keras:")))
    (line,) = [ln for ln in lines[start : start + 3] if "(DistilBertModel)" in ln]
    for head, class_name in DISTILBERT_HEAD_CLASSES.items():
        assert f"{head} ({class_name})" in line
    code, text, _ = run_cli(["inspect", str(distilbert_sources["multiple-choice"]), "--json"])
    found = json.loads(text)
    assert (found["table"], found["head"]) == ("distilbert-hf-keras", "multiple-choice")
    kernel = next(t for t in found["tensors"] if t["name"] == "classifier/kernel")
    assert (kernel["target"], kernel["ops"]) == ("classifier.weight", ["transpose"])
    assert (found["config"]["dim"], found["config"]["n_layers"]) == (32, 2)  # its own keys


# --- the trained MiniLM encoder in a DistilBERT shell: real activation scale ---


@pytest.fixture(scope="session")
def minilm_distilbert(tmp_path_factory):
    root = cached(
        "minilm-distilbert",
        build_minilm_distilbert,
        class_name="DistilBertForMaskedLM",
        positions=REAL_POSITIONS,
    )
    src = root / "h5"
    args = {"out": ["--text", REAL_TEXT]}
    return src, convert_once(tmp_path_factory, "minilm_distilbert", {"out": src}, args)["out"]


def test_trained_weights_in_a_distilbert_shell_pass_the_default_gate(minilm_distilbert):
    import torch

    src, out = minilm_distilbert
    report = _assert_passed_by_the_measured_gate(out)
    assert report["outputs"][-1]["shape"][-1] == 30522  # masked-LM logits over the vocabulary
    assert report["inputs"]["lengths"][0] == REAL_POSITIONS
    written = load_file(str(out / "model.safetensors"))
    trained = as_distilbert(real_models.minilm_tensors(), REAL_POSITIONS)
    for name, value in trained.items():
        np.testing.assert_array_equal(written["distilbert." + name], value, err_msg=name)
    _assert_tokenizer_parity(read_json(out / "conversion_report.json"))
    # The shell is the trained model: it computes what MiniLM's BertModel computes.
    bert = transformers.BertModel.from_pretrained(str(real_models.minilm_dir())).eval()
    shell = transformers.DistilBertModel.from_pretrained(str(out)).eval()
    ids = torch.tensor([[101, 1996, 4937, 2938, 2006, 1996, 13523, 102]])
    with torch.no_grad():
        expected = bert(input_ids=ids).last_hidden_state
        np.testing.assert_allclose(shell(input_ids=ids)[0].numpy(), expected.numpy(), atol=1e-4)


def test_trained_distilbert_with_gelu_written_as_gelu_new_fails_at_layer_0(
    minilm_distilbert, tmp_path
):
    src, out = minilm_distilbert
    gelu_new = lambda config: config.update(activation="gelu_new")  # noqa: E731
    mutated = mutated_copy(out, tmp_path / "mutated", None, gelu_new)
    code, _, err = run_cli(["verify", str(src), str(mutated)])
    assert code == 1 and "parity failed" in err, err
    report = read_json(mutated / "parity_report.json")
    assert report["first_divergence"]["name"] == "hidden_states[1]"
    assert all(o["passed"] for o in report["outputs"][:1])
