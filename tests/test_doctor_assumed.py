"""`tf2pt doctor` never gives a clean verdict on a guess (issue 17, case 1).

Real trained weights (all-MiniLM-L6-v2: 384 wide, 12 heads of 32 dims) saved as a bare
`pytorch_model.bin` with no config: hidden_size / 64 = 6 heads is wrong, and a model built with
it loads without a warning. The doctor must say the head count is assumed and refuse to pass
silently; told the real count (`--set`), its repair reproduces the original model exactly.
"""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from safetensors.torch import load_file

from .conftest import TINY, nothing_written, run_cli
from .real_weights import minilm_dir

SENTENCES = ["the doctor never guesses silently", "twelve heads of thirty-two dims", "ok"]


@pytest.fixture(scope="module")
def minilm_bare(tmp_path_factory):
    """MiniLM's real weights as a bare state_dict, no config beside them."""
    directory = tmp_path_factory.mktemp("minilm-bare")
    state = load_file(str(minilm_dir() / "model.safetensors"))
    torch.save(state, directory / "pytorch_model.bin")
    return directory / "pytorch_model.bin"


def _minilm_hidden(model: torch.nn.Module) -> torch.Tensor:
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(minilm_dir()))
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model.eval()(**batch).last_hidden_state


def _doctor(*args) -> tuple[int, str, str]:
    return run_cli(["doctor", *map(str, args)])


def test_a_guessed_head_count_is_an_assumed_verdict_and_never_exits_0(minilm_bare, tmp_path):
    code, out, err = _doctor(minilm_bare, "--arch", "bert")
    verdict = out.strip().splitlines()[-1]
    assert code == 1
    assert verdict.startswith("verdict: loads after repair, with an assumed config (")
    assert "num_attention_heads=6 (guessed as hidden_size / 64)" in verdict
    assert "family defaults: layer_norm_eps=1e-12, hidden_act=gelu" in verdict
    assert "loads cleanly" not in out
    assert "--set" in err and "--accept-assumed" in err

    out_dir = tmp_path / "fixed"
    code, _, err = _doctor(minilm_bare, "--arch", "bert", "--fix", out_dir)
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"tf2pt: error: {minilm_bare}: not writing a repaired checkpoint")
    assert "--set num_attention_heads=VALUE" in last and "Traceback" not in err
    assert nothing_written(out_dir)


def test_accepting_the_guess_writes_it_and_the_guess_really_is_wrong(minilm_bare, tmp_path):
    """--accept-assumed is the user's decision; the measured damage shows why it is asked for."""
    out_dir = tmp_path / "guessed"
    code, _, err = _doctor(minilm_bare, "--arch", "bert", "--fix", out_dir, "--accept-assumed")
    assert code == 0, err
    config = json.loads((out_dir / "config.json").read_text())
    assert config["num_attention_heads"] == 6
    original = _minilm_hidden(transformers.BertModel.from_pretrained(str(minilm_dir())))
    guessed = _minilm_hidden(transformers.BertModel.from_pretrained(str(out_dir)))
    assert (guessed - original).abs().max() > 1e-2


def test_the_real_head_count_given_reproduces_minilm_exactly(minilm_bare, tmp_path):
    out_dir = tmp_path / "fixed"
    args = (minilm_bare, "--arch", "bert", "--set", "num_attention_heads=12")
    code, out, err = _doctor(*args, "--fix", out_dir)
    assert code == 0, err
    verdict = out.strip().splitlines()[-1]
    assert verdict == (
        "verdict: loads after repair; family defaults: layer_norm_eps=1e-12, hidden_act=gelu, "
        "pad_token_id=0"
    )
    model, info = transformers.BertModel.from_pretrained(str(out_dir), output_loading_info=True)
    assert {k: v for k, v in info.items() if v} == {}
    original = _minilm_hidden(transformers.BertModel.from_pretrained(str(minilm_dir())))
    assert torch.equal(_minilm_hidden(model), original)


@pytest.mark.parametrize("arch", ["roberta", "phobert"])
def test_roberta_family_without_config_gets_the_family_eps_not_the_class_default(arch, tmp_path):
    """RobertaConfig's class default eps is BERT's 1e-12; RoBERTa-family checkpoints use 1e-5."""
    config = transformers.RobertaConfig(**{**TINY, "layer_norm_eps": 1e-5, "type_vocab_size": 1})
    torch.manual_seed(0)
    model = transformers.RobertaModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape) * 0.1)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    out_dir = tmp_path / "fixed"
    args = ("--arch", arch, "--set", "num_attention_heads=4", "--fix", out_dir)
    code, out, err = _doctor(tmp_path / "pytorch_model.bin", *args)
    assert code == 0, err
    assert "family defaults: layer_norm_eps=1e-05" in out.strip().splitlines()[-1]
    written = json.loads((out_dir / "config.json").read_text())
    assert written["layer_norm_eps"] == 1e-5 and written["pad_token_id"] == 1
    fixed = transformers.RobertaModel.from_pretrained(str(out_dir)).eval()
    ids = torch.tensor([[0, 5, 9, 17, 33, 2]])
    with torch.no_grad():
        assert torch.equal(fixed(ids).last_hidden_state, model(ids).last_hidden_state)


def test_family_defaults_are_validated_and_inherited_by_variants():
    from converter.errors import MappingTableError
    from converter.tables import load_table, parse_table

    roberta = load_table("roberta-hf-keras").family_defaults
    assert roberta["layer_norm_eps"] == 1e-5 and roberta["pad_token_id"] == 1
    for variant in ("xlm-roberta-hf-keras", "camembert-hf-keras", "phobert-hf-keras"):
        assert load_table(variant).family_defaults == roberta, variant
    assert load_table("bert-hf-keras").family_defaults["layer_norm_eps"] == 1e-12
    bad = {
        "schema": 1,
        "architecture": "toy",
        "layout": "hf-keras",
        "model_type": "toy",
        "class_prefix": "Toy",
        "groups": {},
        "heads": {},
        "family_defaults": {"layer_norm_eps": [1e-5]},
    }
    expected = "family_defaults.layer_norm_eps: expected a number, string or bool"
    with pytest.raises(MappingTableError, match=expected):
        parse_table("toy", bad)
