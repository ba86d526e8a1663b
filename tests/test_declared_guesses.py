"""A value the table can only guess (ELECTRA's TF1 releases ship no config, so the head count is
run_pretraining.py's hidden_size / 64) is a value the user can declare, and the declaration then
holds on both sides of the parity check: the TF reference had only the same guess."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from .conftest import read_json, run_cli
from .electra_fixtures import build_release_pair, release_variables, write_tf1_checkpoint
from .test_bert import _transformers_own_conversion

HEADS = 4  # the trained model's; hidden_size / 64 guesses 2


@pytest.fixture(scope="module")
def release_with_unguessable_heads(tmp_path_factory):
    root = tmp_path_factory.mktemp("electra_heads")
    dims = dict(embedding_size=32, hidden_size=128, intermediate_size=512)
    disc, gen = build_release_pair(root, 7, 64, num_attention_heads=HEADS, **dims)
    return write_tf1_checkpoint(release_variables(disc, gen), root / "release"), root


def _logits(directory, ids):
    model = transformers.ElectraForPreTraining.from_pretrained(str(directory)).eval()
    with torch.no_grad():
        return model(input_ids=ids).logits.numpy()


def test_a_declared_head_count_reaches_the_reference_and_the_output(
    release_with_unguessable_heads, tmp_path
):
    src, root = release_with_unguessable_heads
    truth_dir = tmp_path / "truth"  # transformers' own conversion of the trained discriminator
    hf_dir = root / "discriminator-hf"
    truth = transformers.ElectraForPreTraining(
        transformers.ElectraConfig.from_pretrained(str(hf_dir))
    )
    oracle = _transformers_own_conversion(hf_dir, "ElectraForPreTraining")
    truth.load_state_dict({k: torch.from_numpy(v) for k, v in oracle.items()})
    truth.save_pretrained(str(truth_dir))
    ids = torch.tensor([[5, 17, 42, 8, 3, 61, 2, 9]])

    guessed = tmp_path / "guessed"
    code, _, err = run_cli(["convert", str(src), str(guessed)])
    assert code == 0, err
    assert "assumed num_attention_heads=2 (guessed" in err
    assert read_json(guessed / "config.json")["num_attention_heads"] == 2
    # the guess converts cleanly against a reference that had the same guess, yet it is not the
    # trained model: this is why the guess is said, and why it can be declared
    assert not np.allclose(_logits(guessed, ids), _logits(truth_dir, ids), atol=1e-4)

    declared = tmp_path / "declared"
    code, _, err = run_cli(
        ["convert", str(src), str(declared), "--set", f"num_attention_heads={HEADS}"]
    )
    assert code == 0, err
    assert f"declared num_attention_heads={HEADS}" in err
    assert read_json(declared / "parity_report.json")["passed"]
    assert read_json(declared / "config.json")["num_attention_heads"] == HEADS
    np.testing.assert_allclose(_logits(declared, ids), _logits(truth_dir, ids), atol=1e-5)
