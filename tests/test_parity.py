"""Parity verification passes on faithful conversions and catches broken ones at the right layer.

Each mutation damages a correct output the way real converters go wrong; `tf2pt verify` must
fail (exit 1) and `first_divergence` must name where the damage first shows.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from .conftest import HEAD_CLASSES, copy_tree, mutated_copy, run_cli, staging_leftovers
from .mutations import swapped


def _parity(out):
    return json.loads((out / "parity_report.json").read_text())


@pytest.mark.parametrize("head", list(HEAD_CLASSES))
def test_convert_verifies_every_head_within_tolerance(head, converted):
    report = _parity(converted[head])
    assert report["passed"] is True and report["first_divergence"] is None
    assert report["max_abs_diff"] <= 1e-5
    assert report["gate"]["kind"] == "measured-noise" and "float32 noise" in report["criterion"]
    names = [o["name"] for o in report["outputs"]]
    assert names[:3] == ["hidden_states[0]", "hidden_states[1]", "hidden_states[2]"]
    head_outputs = {
        "question-answering": ["start_logits", "end_logits"],
        "base-model": ["pooler_output"],
    }.get(head, ["logits"])
    assert names[3:] == head_outputs
    for o in report["outputs"]:
        assert set(o) >= {
            "name",
            "max_abs_diff",
            "mean_abs_diff",
            "max_rel_diff",
            "cosine",
            "noise",
            "tolerance",
            "margin",
            "passed",
        }
        assert o["cosine"] > 0.999999
        assert o["max_abs_diff"] <= o["tolerance"] <= 1e-3 * o["scale"] + 1e-30
        assert o["tolerance"] >= min(10 * o["noise"], 1e-3 * o["scale"])
    assert report["inputs"]["lengths"][0] == 40 - 2  # one row at the maximum position length
    assert {"tensorflow", "torch", "transformers"} <= set(report["versions"])
    assert (converted[head] / "parity_report.md").read_text().startswith("# Parity report: PASSED")
    assert (converted[head] / "parity_report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _mutated(converted, tmp_path, head, mutate_tensors=None, mutate_config=None):
    return mutated_copy(converted[head], tmp_path / "mutated", mutate_tensors, mutate_config)


def _verify_fails(tf_checkpoints, head, out):
    code, _, err = run_cli(["verify", str(tf_checkpoints[head]), str(out)])
    assert code == 1, err
    assert "tf2pt: error:" in err and "parity failed" in err and "Traceback" not in err
    report = _parity(out)
    assert report["passed"] is False
    return report


def test_swapping_query_and_key_of_layer_1_diverges_at_hidden_states_2(
    converted, tf_checkpoints, tmp_path
):
    attention = "roberta.encoder.layer.1.attention.self."
    swap = swapped(attention + "query", attention + "key")

    report = _verify_fails(
        tf_checkpoints,
        "sequence-classification",
        _mutated(converted, tmp_path, "sequence-classification", swap),
    )
    assert report["first_divergence"] == {
        "name": "hidden_states[2]",
        "index": 2,
        "description": "output of encoder layer 1",
    }
    assert [o["passed"] for o in report["outputs"][:2]] == [True, True]


def test_dropped_transpose_on_a_square_matrix_is_caught(converted, tf_checkpoints, tmp_path):
    def untranspose(t):
        name = "roberta.encoder.layer.0.attention.output.dense.weight"
        t[name] = np.ascontiguousarray(t[name].T)

    report = _verify_fails(
        tf_checkpoints,
        "sequence-classification",
        _mutated(converted, tmp_path, "sequence-classification", untranspose),
    )
    assert report["first_divergence"]["name"] == "hidden_states[1]"


def test_position_embeddings_shifted_by_one_row_are_caught(converted, tf_checkpoints, tmp_path):
    def shift(t):
        name = "roberta.embeddings.position_embeddings.weight"
        t[name] = np.ascontiguousarray(np.roll(t[name], 1, axis=0))

    report = _verify_fails(
        tf_checkpoints, "masked-lm", _mutated(converted, tmp_path, "masked-lm", shift)
    )
    assert report["first_divergence"]["name"] == "hidden_states[0]"


def test_wrong_layer_norm_eps_in_the_output_config_is_caught(converted, tf_checkpoints, tmp_path):
    def bert_eps(config):
        config["layer_norm_eps"] = 1e-12  # the source model was built with 1e-5

    report = _verify_fails(
        tf_checkpoints,
        "token-classification",
        _mutated(converted, tmp_path, "token-classification", mutate_config=bert_eps),
    )
    assert report["first_divergence"]["name"] == "hidden_states[0]"


def test_a_classifier_bias_off_by_a_little_fails_only_at_the_logits(
    converted, tf_checkpoints, tmp_path
):
    def nudge(t):
        t["classifier.out_proj.bias"] = t["classifier.out_proj.bias"] + np.float32(1e-3)

    report = _verify_fails(
        tf_checkpoints,
        "sequence-classification",
        _mutated(converted, tmp_path, "sequence-classification", nudge),
    )
    assert report["first_divergence"]["name"] == "logits"
    assert all(o["passed"] for o in report["outputs"] if o["name"].startswith("hidden"))


def test_an_output_that_does_not_load_strictly_is_a_parity_failure(
    converted, tf_checkpoints, tmp_path
):
    def drop(t):
        del t["roberta.encoder.layer.0.output.dense.bias"]

    out = _mutated(converted, tmp_path, "sequence-classification", drop)
    code, _, err = run_cli(["verify", str(tf_checkpoints["sequence-classification"]), str(out)])
    assert code == 1
    assert "does not load strictly" in err and "layer.0.output.dense.bias" in err


def test_verify_on_an_unchanged_output_passes_and_prints_json(converted, tf_checkpoints, tmp_path):
    out = copy_tree(converted["question-answering"], tmp_path / "qa")
    code, stdout, err = run_cli(
        ["verify", str(tf_checkpoints["question-answering"]), str(out), "--json"]
    )
    assert code == 0, err
    assert json.loads(stdout)["passed"] is True


def test_verify_with_type_vocab_2_feeds_token_type_ids(tmp_path):
    from .conftest import build_tf_roberta

    src = build_tf_roberta(
        tmp_path / "src", "RobertaForSequenceClassification", seed=11, type_vocab_size=2
    )
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out")])
    assert code == 0, err
    report = _parity(tmp_path / "out")
    assert report["passed"] and report["inputs"]["token_type_ids"] is True


def _tiny_roberta_tokenizer(directory):
    """A byte-level BPE vocabulary small enough for the tiny model (ids < 99)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4}
    for ch in letters + "Ġ.,":
        vocab[ch] = len(vocab)
    for word in ("Ġt", "Ġth", "Ġthe", "Ġc", "Ġca", "Ġcat", "Ġs", "Ġsa", "Ġsat"):
        vocab[word] = len(vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    merges = ["Ġ t", "Ġt h", "Ġth e", "Ġ c", "Ġc a", "Ġca t", "Ġ s", "Ġs a", "Ġsa t"]
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


def test_real_text_through_the_source_tokenizer_joins_the_parity_batch(tf_checkpoints, tmp_path):
    src = copy_tree(tf_checkpoints["sequence-classification"], tmp_path / "src")
    _tiny_roberta_tokenizer(src)
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(src), str(out), "--text", "the cat sat."])
    assert code == 0, err
    report = _parity(out)
    assert report["passed"]
    assert "text: the cat sat." in report["inputs"]["rows"]
    assert (out / "vocab.json").exists() and (out / "merges.txt").exists()


def test_text_without_a_tokenizer_is_a_clear_error(tf_checkpoints, tmp_path):
    out = tmp_path / "out"
    code, _, err = run_cli(
        ["convert", str(tf_checkpoints["sequence-classification"]), str(out), "--text", "hello"]
    )
    assert code == 2
    assert "--text needs tokenizer files" in err.strip().splitlines()[-1]
    assert not out.exists()


def test_a_broken_tokenizer_is_a_clear_error(tf_checkpoints, tmp_path):
    src = copy_tree(tf_checkpoints["sequence-classification"], tmp_path / "src")
    _tiny_roberta_tokenizer(src)
    (src / "merges.txt").write_text("#version: 0.2\nq z\n")  # merges tokens not in the vocab
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out"), "--text", "hi"])
    assert code == 2 and "Traceback" not in err
    assert "--text needs the source tokenizer, which did not load" in err
    assert not (tmp_path / "out").exists()


def test_a_conversion_that_fails_parity_publishes_nothing_and_keeps_its_evidence_aside(
    tf_checkpoints, tmp_path
):
    src, out = tf_checkpoints["masked-lm"], tmp_path / "out"
    kept = tmp_path / "out.parity-failed"
    code, _, err = run_cli(["convert", str(src), str(out), "--atol", "1e-12"])
    assert code == 1 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"tf2pt: error: {kept}: parity failed: first divergence at")
    assert f"{out} was not written" in last
    assert not out.exists() and not staging_leftovers(out)
    report = _parity(kept)
    assert report["passed"] is False and report["output"] == str(kept)
    assert {"model.safetensors", "config.json", "parity_report.md"} <= {
        p.name for p in kept.iterdir()
    }
    # the same failure again replaces the evidence; then a passing run removes it
    assert run_cli(["convert", str(src), str(out), "--atol", "1e-12"])[0] == 1
    code, _, err = run_cli(["convert", str(src), str(out)])
    assert code == 0, err
    assert out.is_dir() and not kept.exists() and f"removed {kept}" in err
