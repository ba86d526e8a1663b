"""Real-scale sources for the parity tests, made from trained weights by the real producers.

all-MiniLM-L6-v2 (tests/real_weights.py) is a trained BERT: 6 layers, 384 wide, 12 heads. Its
tensors also go into a RoBERTa shell (RoBERTa's names, position offset and a one-row token-type
table), and `widen` grows them into a roberta-base-sized model (12 layers, 768 wide, 12 heads of
64, 3072 intermediate, 50,265 tokens) that computes exactly what the trained model computes, each
hidden unit duplicated: its activation statistics are the trained model's, at roberta-base's size.
Heads the trained model lacks are initialised by the producer's own initialiser (seeded).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .producers import settings_as
from .real_weights import minilm_dir

ROBERTA_IDS = dict(pad_token_id=1, bos_token_id=0, eos_token_id=2)
BASE_SIZE = dict(vocab_size=50265, num_hidden_layers=12)


def _quiet() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import transformers

    transformers.logging.set_verbosity_error()


def minilm_tensors() -> dict[str, np.ndarray]:
    """The trained base-model tensors, without the `bert.`-less prefix they are stored with."""
    from safetensors.numpy import load_file

    return load_file(str(minilm_dir() / "model.safetensors"))


def _dup_rows(w: np.ndarray) -> np.ndarray:
    """Output units duplicated: [w; w] along the first axis."""
    return np.concatenate([w, w], axis=0)


def _split_cols(w: np.ndarray) -> np.ndarray:
    """Input units duplicated, so each copy carries half the weight: [w/2 | w/2]."""
    return np.concatenate([w / 2, w / 2], axis=1)


def _dup_heads(w: np.ndarray, heads: int, axis: int) -> np.ndarray:
    """Each head's units duplicated inside that head: [h0 h0 h1 h1 …] along `axis`."""
    parts = np.split(w, heads, axis=axis)
    return np.concatenate([p for part in parts for p in (part, part)], axis=axis)


def widen(tensors: dict[str, np.ndarray], heads: int, vocab: int, layers: int):
    """A model twice as wide and `layers` deep (the trained layers repeated) computing the same
    function: hidden state h becomes [h | h], layer norms see the same mean and variance, each
    attention head keeps its count and doubles its size (queries scaled by 1/√2 so that
    q·k/√(2d) stays q·k/√d), the intermediate layer doubles. The vocabulary grows by repeating
    rows. Names are those of a BERT base model (`embeddings.…`, `encoder.layer.N.…`)."""
    out: dict[str, np.ndarray] = {}
    trained_layers = 1 + max(int(k.split(".")[2]) for k in tensors if k.startswith("encoder."))
    for name, w in tensors.items():
        if name.startswith("encoder.layer."):
            continue
        if name == "embeddings.word_embeddings.weight":
            w = w[np.arange(vocab) % w.shape[0]]
        if name.startswith("embeddings.") and w.ndim == 2:
            out[name] = np.concatenate([w, w], axis=1)
        elif w.ndim == 1:
            out[name] = _dup_rows(w)
        elif name.startswith("pooler."):
            out[name] = _split_cols(_dup_rows(w))
        elif name.startswith("embeddings.position_ids"):
            continue
        else:
            raise ValueError(f"widen: no rule for {name}")
    scale = {"query": 1 / math.sqrt(2), "key": 1.0, "value": 1.0}
    for i in range(layers):
        src = f"encoder.layer.{i % trained_layers}."
        dst = f"encoder.layer.{i}."
        for kind, s in scale.items():
            w = tensors[f"{src}attention.self.{kind}.weight"]
            b = tensors[f"{src}attention.self.{kind}.bias"]
            out[f"{dst}attention.self.{kind}.weight"] = s * _split_cols(_dup_heads(w, heads, 0))
            out[f"{dst}attention.self.{kind}.bias"] = s * _dup_heads(b, heads, 0)
        w = tensors[f"{src}attention.output.dense.weight"]
        out[f"{dst}attention.output.dense.weight"] = _dup_rows(_dup_heads(w, heads, 1) / 2)
        for name in ("intermediate.dense", "output.dense"):
            out[f"{dst}{name}.weight"] = _split_cols(_dup_rows(tensors[f"{src}{name}.weight"]))
        for name in (
            "attention.output.dense.bias",
            "attention.output.LayerNorm.weight",
            "attention.output.LayerNorm.bias",
            "intermediate.dense.bias",
            "output.dense.bias",
            "output.LayerNorm.weight",
            "output.LayerNorm.bias",
        ):
            out[f"{dst}{name}"] = _dup_rows(tensors[f"{src}{name}"])
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def bert_config(**overrides):
    import transformers

    return transformers.BertConfig.from_pretrained(str(minilm_dir()), **overrides)


def roberta_config(width: int = 1, **overrides):
    """RoBERTa's conventions (ids, 2-row position offset, one token type, eps 1e-5) around the
    trained model's dimensions, `width` times as wide."""
    import transformers

    bert = bert_config()
    settings = dict(
        vocab_size=bert.vocab_size,
        hidden_size=bert.hidden_size * width,
        num_hidden_layers=bert.num_hidden_layers,
        num_attention_heads=bert.num_attention_heads,
        intermediate_size=bert.intermediate_size * width,
        max_position_embeddings=bert.max_position_embeddings + 2,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        **ROBERTA_IDS,
    )
    return transformers.RobertaConfig(**{**settings, **overrides})


def as_roberta(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """BERT base-model tensors in a RoBERTa shell: two padding rows before the positions
    (RoBERTa's positions start at padding_idx + 1 = 2) and one token type that is all zeros, as
    in RoBERTa releases (fairseq has no segments). The trained token-type row 0, which BERT adds
    at every position, is folded into the position rows, so the function is unchanged."""
    out = dict(tensors)
    token_type = out["embeddings.token_type_embeddings.weight"][:1]
    positions = out["embeddings.position_embeddings.weight"] + token_type
    pad = np.zeros((2, positions.shape[1]), dtype=positions.dtype)
    out["embeddings.position_embeddings.weight"] = np.concatenate([pad, positions])
    out["embeddings.token_type_embeddings.weight"] = np.zeros_like(token_type)
    return out


def save_pretrained_pt(
    directory: Path, family: str, width: int = 1, positions: int | None = None, **overrides
) -> Path:
    """A PyTorch `save_pretrained` dir of the trained encoder, `width` 2 meaning the
    roberta-base-sized widening: BertModel for BERT; for RoBERTa a RobertaForMaskedLM (the
    layout keras-hub's importer reads; its LM head, which the trained model lacks, is
    initialised by transformers with seed 0, and its pooler is dropped). `positions` keeps only
    the first trained position rows, as a model fine-tuned for shorter inputs would."""
    _quiet()
    tensors = minilm_tensors()
    tensors.pop("embeddings.position_ids", None)
    if positions is not None:
        table = "embeddings.position_embeddings.weight"
        tensors[table] = tensors[table][:positions]
        offset = 2 if family == "roberta" else 0
        overrides["max_position_embeddings"] = positions + offset
    heads = bert_config().num_attention_heads
    if family == "roberta":
        vocab = BASE_SIZE["vocab_size"] if width == 2 else bert_config().vocab_size
        layers = BASE_SIZE["num_hidden_layers"] if width == 2 else bert_config().num_hidden_layers
        tensors = as_roberta(widen(tensors, heads, vocab, layers) if width == 2 else tensors)
        config = roberta_config(width, vocab_size=vocab, num_hidden_layers=layers, **overrides)
        tensors = {k: v for k, v in tensors.items() if not k.startswith("pooler.")}
        return save_shell(directory, "RobertaForMaskedLM", config, tensors, "roberta.")
    grown = {}
    if width == 2:
        tensors = widen(tensors, heads, bert_config().vocab_size, 12)
        grown = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12)
    return save_shell(directory, "BertModel", bert_config(**{**overrides, **grown}), tensors)


def trained_settings(*same: str, **renamed: str) -> dict:
    """The trained model's settings for another config class (`settings_as` its BertConfig)."""
    return settings_as(bert_config().to_dict(), *same, **renamed)


def save_shell(
    directory: Path,
    class_name: str,
    config,
    tensors: dict[str, np.ndarray],
    prefix: str = "",
    tied: dict[str, str] | None = None,
) -> Path:
    """A PyTorch `save_pretrained` dir of transformers' `class_name` holding the trained
    `tensors` (renamed to that class, under `prefix`), loaded strictly; what the trained model
    lacks (a head) is transformers' own initialisation, seeded. `tied`: a tied parameter's
    name → the name of the tensor it shares."""
    import torch
    import transformers

    torch.manual_seed(0)
    model = getattr(transformers, class_name)(config)
    state = model.state_dict()
    unknown = {prefix + k for k in tensors} - set(state)
    assert not unknown, unknown
    state.update(
        {prefix + k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()}
    )
    for name, shared in (tied or {}).items():
        if name in state:  # both keys load into one tensor
            state[name] = state[shared]
    model.load_state_dict(state, strict=True)
    model.save_pretrained(str(directory))
    return directory


def tf_model(pt_dir: Path, class_name: str, seed: int = 0, **config):
    """transformers' own TF class loaded from the PyTorch dir (`from_pt`); head weights the
    base model lacks come from the TF class's initialiser, seeded."""
    import tensorflow as tf
    import transformers

    _quiet()
    tf.keras.utils.set_random_seed(seed)
    cls = getattr(transformers, "TF" + class_name)
    return cls.from_pretrained(str(pt_dir), from_pt=True, **config)


def save_tf_h5(pt_dir: Path, class_name: str, directory: Path, seed: int = 0, **config) -> Path:
    """`tf_model` saved with `save_pretrained` (tf_model.h5 + config.json)."""
    tf_model(pt_dir, class_name, seed, **config).save_pretrained(str(directory))
    return directory


def save_model_garden(tf1_dir: Path, directory: Path) -> Path:
    """The trained encoder as TF Model Garden's BERT releases were made: a google-research/bert
    TF1 checkpoint (`tf1_dir`, with its bert_config.json) converted by Model Garden's own
    tf2_bert_encoder_checkpoint_converter into `tf.train.Checkpoint(encoder=BertEncoder)`
    (`bert_model.ckpt-1`), with the same bert_config.json and the trained model's vocab.txt
    beside it, as the release tarballs have them."""
    import shutil

    from official.legacy.bert import configs
    from official.nlp.tools import tf2_bert_encoder_checkpoint_converter as converter

    _quiet()
    config_file = tf1_dir / "bert_config.json"
    prefix = next(tf1_dir.glob("model.ckpt-*.index")).with_suffix("")
    converter.convert_checkpoint(
        configs.BertConfig.from_json_file(str(config_file)),
        str(directory / "bert_model.ckpt"),
        str(prefix),
        checkpoint_model_name="encoder",
        converted_model="encoder",
    )
    shutil.copyfile(config_file, directory / "bert_config.json")
    shutil.copyfile(minilm_dir() / "vocab.txt", directory / "vocab.txt")
    return directory


def export_tfhub(model_garden_dir: Path, directory: Path) -> Path:
    """A TF Hub BERT encoder SavedModel exported by Model Garden's export_tfhub_lib from a Model
    Garden checkpoint (as the bert_en_uncased_L-*_H-*_A-* encoders were), with the
    bert_config.json it was exported with beside it."""
    import shutil

    from official.legacy.bert import configs
    from official.nlp.tools import export_tfhub_lib

    _quiet()
    config_file = model_garden_dir / "bert_config.json"
    prefix = next(model_garden_dir.glob("bert_model.ckpt-*.index")).with_suffix("")
    export_tfhub_lib.export_model(
        str(directory),
        bert_config=configs.BertConfig.from_json_file(str(config_file)),
        model_checkpoint_path=str(prefix),
        with_mlm=False,
        vocab_file=str(model_garden_dir / "vocab.txt"),
        do_lower_case=True,
    )
    shutil.copyfile(config_file, directory / "bert_config.json")
    return directory
