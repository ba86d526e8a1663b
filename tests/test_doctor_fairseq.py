"""`tf2pt doctor` on fairseq RoBERTa `model.pt` files and PyTorch Lightning `.ckpt` files
(issue 17, cases 2 and 3).

fairseq does not install here, so the checkpoints are written the way fairseq writes them: a
transformers RoBERTa's weights renamed to fairseq's state_dict names (below, spelled as fairseq's
modules name them), its args as an `argparse.Namespace` (fairseq < 0.10) or a `cfg` dict (after),
and a dict.txt. `fairseq_forward` re-implements fairseq's RoBERTa forward from fairseq's own
definitions (make_positions, MultiheadAttention with scaled q and a key padding mask, post-LN
TransformerEncoderLayer, RobertaLMHead, RobertaClassificationHead) and is the oracle the repaired
model must reproduce.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import transformers

from .conftest import TINY, nothing_written, run_cli

PAD = 1
HEADS = TINY["num_attention_heads"]
LAYERS = TINY["num_hidden_layers"]
TOKENS = torch.tensor([[0, 5, 9, 17, 33, 2], [0, 44, 12, 2, PAD, PAD]])
MASK = (TOKENS != PAD).long()

# transformers' name → fairseq's, per layer (fairseq's TransformerEncoderLayer attribute names)
LAYER_NAMES = {
    "attention.self.query": "self_attn.q_proj",
    "attention.self.key": "self_attn.k_proj",
    "attention.self.value": "self_attn.v_proj",
    "attention.output.dense": "self_attn.out_proj",
    "attention.output.LayerNorm": "self_attn_layer_norm",
    "intermediate.dense": "fc1",
    "output.dense": "fc2",
    "output.LayerNorm": "final_layer_norm",
}
EMBEDDING_NAMES = {
    "word_embeddings": "embed_tokens",
    "position_embeddings": "embed_positions",
    "LayerNorm": "layernorm_embedding",
}


def _perturbed(model: torch.nn.Module) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.1)
    return model.eval()


def _hf_model(class_name: str, **extra) -> torch.nn.Module:
    config = transformers.RobertaConfig(
        **{**TINY, "layer_norm_eps": 1e-5, "type_vocab_size": 1, **extra}
    )
    torch.manual_seed(0)
    model = _perturbed(getattr(transformers, class_name)(config))
    with torch.no_grad():  # fairseq has no token types: the HF side adds a row of zeros
        model.roberta.embeddings.token_type_embeddings.weight.zero_()
    return model


def _fairseq_state(model: torch.nn.Module, head_name: str = "mnli", fused: bool = False) -> dict:
    """The model's weights under fairseq's names (what fairseq's RobertaModel.state_dict() has)."""
    state = {}
    for key, value in model.state_dict().items():
        parts = key.split(".")
        if key.startswith("roberta.embeddings.") and parts[2] in EMBEDDING_NAMES:
            name = f"encoder.sentence_encoder.{EMBEDDING_NAMES[parts[2]]}.{parts[-1]}"
        elif key.startswith("roberta.encoder.layer."):
            inner = ".".join(parts[4:-1])
            name = f"encoder.sentence_encoder.layers.{parts[3]}.{LAYER_NAMES[inner]}.{parts[-1]}"
        elif key == "lm_head.decoder.weight":
            name = "encoder.lm_head.weight"
        elif key.startswith("lm_head.") and key != "lm_head.decoder.bias":
            name = "encoder." + key
        elif key.startswith("classifier."):
            name = f"classification_heads.{head_name}." + key.removeprefix("classifier.")
        else:
            continue  # token types, position_ids: fairseq has neither
        state[name] = value.clone()
    state["encoder.sentence_encoder.version"] = torch.tensor([3.0])
    if fused:  # fairseq < 0.10's MultiheadAttention: one in_proj for q, k, v
        for layer in range(LAYERS):
            stem = f"encoder.sentence_encoder.layers.{layer}.self_attn."
            for kind in ("weight", "bias"):
                parts = [state.pop(f"{stem}{p}_proj.{kind}") for p in "qkv"]
                state[f"{stem}in_proj_{kind}"] = torch.cat(parts)
    return state


def _args(**extra) -> argparse.Namespace:
    return argparse.Namespace(
        arch="roberta_base",
        encoder_layers=LAYERS,
        encoder_embed_dim=TINY["hidden_size"],
        encoder_ffn_embed_dim=TINY["intermediate_size"],
        encoder_attention_heads=HEADS,
        activation_fn="gelu",
        max_positions=TINY["max_position_embeddings"] - 2,
        encoder_normalize_before=False,
        no_scale_embedding=True,
        encoder_learned_pos=True,
        dropout=0.1,
        **extra,
    )


def _write_dict(directory: Path, entries: int) -> None:
    lines = [f"{1000 + i} {500 - i}" for i in range(entries)]
    (directory / "dict.txt").write_text("\n".join(lines) + "\n")


def _save_fairseq(directory: Path, state: dict, with_cfg: bool, dict_entries: int = 94) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    if with_cfg:  # fairseq ≥ 0.10: an OmegaConf config saved as a plain dict
        config = {"_name": "roberta_base", **vars(_args())}
        checkpoint = {"cfg": {"model": config, "task": {"_name": "masked_lm"}}, "model": state}
    else:
        checkpoint = {
            "args": _args(),
            "model": state,
            "optimizer_history": [{"criterion_name": "MaskedLmLoss", "num_updates": 10}],
            "extra_state": {"epoch": 2, "val_loss": 3.25},
        }
    torch.save(checkpoint, directory / "model.pt")
    _write_dict(directory, dict_entries)
    return directory / "model.pt"


def _layer_norm(x, state, name):
    return F.layer_norm(x, x.shape[-1:], state[name + ".weight"], state[name + ".bias"], 1e-5)


def _linear(x, state, name):
    return F.linear(x, state[name + ".weight"], state[name + ".bias"])


def fairseq_forward(state: dict, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """fairseq's RoBERTa (post-LN, learned positions, unscaled embeddings), in eval mode."""
    enc = "encoder.sentence_encoder."
    pad_mask = tokens.eq(PAD)
    positions = (torch.cumsum(~pad_mask, dim=1) * ~pad_mask).long() + PAD  # make_positions
    x = F.embedding(tokens, state[enc + "embed_tokens.weight"])
    x = x + F.embedding(positions, state[enc + "embed_positions.weight"])
    x = _layer_norm(x, state, enc + "layernorm_embedding")
    batch, length, dim = x.shape
    head_dim = dim // HEADS
    for layer in range(LAYERS):
        p = f"{enc}layers.{layer}."
        if p + "self_attn.in_proj_weight" in state:
            q, k, v = F.linear(
                x, state[p + "self_attn.in_proj_weight"], state[p + "self_attn.in_proj_bias"]
            ).chunk(3, dim=-1)
        else:
            q, k, v = (_linear(x, state, f"{p}self_attn.{n}_proj") for n in "qkv")
        q = q * head_dim**-0.5

        def heads(t):
            return t.view(batch, length, HEADS, head_dim).transpose(1, 2)

        scores = heads(q) @ heads(k).transpose(-1, -2)
        scores = scores.masked_fill(pad_mask[:, None, None, :], float("-inf"))
        attn = torch.softmax(scores, dim=-1) @ heads(v)
        attn = attn.transpose(1, 2).reshape(batch, length, dim)
        attn = _linear(attn, state, p + "self_attn.out_proj")
        x = _layer_norm(x + attn, state, p + "self_attn_layer_norm")
        hidden = _linear(F.gelu(_linear(x, state, p + "fc1")), state, p + "fc2")
        x = _layer_norm(x + hidden, state, p + "final_layer_norm")
    out = {"hidden": x}
    if "encoder.lm_head.weight" in state:
        lm = "encoder.lm_head."
        h = _layer_norm(F.gelu(_linear(x, state, lm + "dense")), state, lm + "layer_norm")
        out["logits"] = F.linear(h, state[lm + "weight"]) + state[lm + "bias"]
    head = sorted({k.split(".")[1] for k in state if k.startswith("classification_heads.")})
    if head:
        c = f"classification_heads.{head[0]}."
        pooled = torch.tanh(_linear(x[:, 0], state, c + "dense"))  # the <s> token
        out["logits"] = _linear(pooled, state, c + "out_proj")
    return out


def _hf_outputs(directory: Path, class_name: str) -> dict[str, torch.Tensor]:
    model, info = getattr(transformers, class_name).from_pretrained(
        str(directory), output_loading_info=True
    )
    assert {k: v for k, v in info.items() if v} == {}
    with torch.no_grad():
        out = model.eval()(input_ids=TOKENS, attention_mask=MASK, output_hidden_states=True)
    return {"hidden": out.hidden_states[-1], "logits": out.logits}


def _doctor(*args) -> tuple[int, str, str]:
    return run_cli(["doctor", *map(str, args)])


def _close(a: torch.Tensor, b: torch.Tensor) -> float:
    rows = MASK.bool()
    return float((a[rows] - b[rows]).abs().max()) if a.dim() == 3 else float((a - b).abs().max())


@pytest.mark.parametrize(("with_cfg", "fused"), [(False, False), (True, True)])
def test_fairseq_masked_lm_is_read_safely_and_reproduces_fairseqs_forward(
    with_cfg, fused, tmp_path
):
    state = _fairseq_state(_hf_model("RobertaForMaskedLM"), fused=fused)
    ckpt = _save_fairseq(tmp_path / "roberta.base", state, with_cfg)
    out_dir = tmp_path / "fixed"
    code, out, err = _doctor(ckpt, "--fix", out_dir)
    assert code == 0, out + err
    assert out.strip().splitlines()[-1] == "verdict: loads after repair"
    assert "model:      RobertaForMaskedLM" in out
    assert "4 specials (<s>, <pad>, </s>, <unk>) + 94 entries + <mask> (id 98) = 99" in out
    assert ("split into q/k/v" in out) == fused
    config = json.loads((out_dir / "config.json").read_text())
    assert config["max_position_embeddings"] == TINY["max_position_embeddings"]
    assert (config["layer_norm_eps"], config["type_vocab_size"], config["pad_token_id"]) == (
        1e-5,
        1,
        PAD,
    )
    assert (out_dir / "dict.txt").is_file()
    got = _hf_outputs(out_dir, "RobertaForMaskedLM")
    want = fairseq_forward(state, TOKENS)
    assert _close(got["hidden"], want["hidden"]) < 1e-5
    assert _close(got["logits"], want["logits"]) < 1e-4


def test_fairseq_classification_head_keeps_its_labels_and_reproduces_fairseq(tmp_path):
    state = _fairseq_state(_hf_model("RobertaForSequenceClassification", num_labels=3))
    ckpt = _save_fairseq(tmp_path / "roberta.mnli", state, with_cfg=False)
    out_dir = tmp_path / "fixed"
    code, out, err = _doctor(ckpt, "--fix", out_dir)
    assert code == 0, out + err
    assert "model:      RobertaForSequenceClassification" in out
    assert len(json.loads((out_dir / "config.json").read_text())["id2label"]) == 3
    got = _hf_outputs(out_dir, "RobertaForSequenceClassification")
    want = fairseq_forward(state, TOKENS)
    assert _close(got["logits"], want["logits"]) < 1e-5


def test_a_fairseq_dict_that_does_not_fit_the_embeddings_is_an_input_error(tmp_path):
    state = _fairseq_state(_hf_model("RobertaForMaskedLM"))
    ckpt = _save_fairseq(tmp_path / "m", state, with_cfg=False, dict_entries=120)
    code, _, err = _doctor(ckpt)
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"tf2pt: error: {tmp_path / 'm' / 'dict.txt'}: 120 entries + 4 specials")
    assert "not the model's" in last


class TrainingMeter:
    """Stands in for a class fairseq pickles that no allowlist admits (fairseq.logging.meters)."""

    def __init__(self):
        self.avg = 1.0


def test_a_fairseq_checkpoint_with_a_foreign_class_is_refused_naming_it(tmp_path):
    state = _fairseq_state(_hf_model("RobertaForMaskedLM"))
    checkpoint = {"args": _args(), "model": state, "extra_state": {"meter": TrainingMeter()}}
    torch.save(checkpoint, tmp_path / "model.pt")
    code, _, err = _doctor(tmp_path / "model.pt")
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert f"it pickles {__name__}.TrainingMeter, which is not" in last
    assert "argparse.Namespace" in last and "Traceback" not in err


@pytest.mark.parametrize("name", ["epoch=3-step=1200.ckpt", "last.ckpt", "weights"])
def test_a_lightning_checkpoint_is_read_by_content_whatever_its_name(name, tmp_path):
    model = _hf_model("RobertaForSequenceClassification")
    model.save_pretrained(tmp_path / "reference")
    checkpoint = {
        "epoch": 3,
        "global_step": 1200,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-5}]}],
        "lr_schedulers": [],
    }
    torch.save(checkpoint, tmp_path / name)
    out_dir = tmp_path / "fixed"
    code, out, err = _doctor(tmp_path / name, "--model", tmp_path / "reference", "--fix", out_dir)
    assert code == 0, out + err
    assert "a PyTorch Lightning 2.4.0 checkpoint (epoch 3, global_step 1200)" in out
    assert out.strip().splitlines()[-1] == "verdict: loads after repair"
    fixed = transformers.RobertaForSequenceClassification.from_pretrained(str(out_dir)).eval()
    with torch.no_grad():
        got, want = (m(TOKENS, attention_mask=MASK).logits for m in (fixed, model))
        assert torch.equal(got, want)


def test_a_file_that_is_neither_safetensors_nor_torch_save_is_refused_by_content(tmp_path):
    (tmp_path / "last.ckpt").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    out_dir = tmp_path / "fixed"
    code, _, err = _doctor(tmp_path / "last.ckpt", "--arch", "roberta", "--fix", out_dir)
    assert code == 2
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(f"tf2pt: error: {tmp_path / 'last.ckpt'}: not a PyTorch checkpoint")
    )
    assert nothing_written(out_dir)
