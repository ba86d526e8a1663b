"""DistilBERT sources made by the real producers: transformers' TFDistilBert* classes.

Tiny models (2 layers, 32 wide) with every weight randomised prove the table; the trained
all-MiniLM-L6-v2 encoder in a DistilBERT shell proves the parity gate at real activation scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import real_models
from .producers import DISTILBERT_TINY, build_tf_model, head_classes  # noqa: F401 - re-exported

DISTILBERT_HEAD_CLASSES = head_classes("distilbert")
# Per head: what a user of it sets (TFDistilBertForQuestionAnswering insists on 2 labels).
HEAD_SETTINGS = {
    "sequence-classification": {"num_labels": 3},
    "token-classification": {"num_labels": 5},
    "question-answering": {"num_labels": 2},
    # TF ignores this flag and uses the stored position table; the conversion must too.
    "base-model": {"sinusoidal_pos_embds": True},
}
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "##s"]


def save_wordpiece_tokenizer(directory: Path, vocab_size: int) -> None:
    """A DistilBERT WordPiece tokenizer saved by transformers beside the weights."""
    import transformers

    words = WORDS + [f"w{i}" for i in range(vocab_size - len(WORDS))]
    (directory / "vocab.txt").write_text("\n".join(words) + "\n")
    tokenizer = transformers.DistilBertTokenizerFast(vocab_file=str(directory / "vocab.txt"))
    tokenizer.save_pretrained(str(directory))


def build_tf_distilbert(directory: Path, head: str, seed: int) -> Path:
    """A TFDistilBert* model for `head`, every weight random, saved with save_pretrained, with a
    WordPiece tokenizer beside it."""
    settings = HEAD_SETTINGS.get(head, {})
    build_tf_model("distilbert", DISTILBERT_HEAD_CLASSES[head], directory, seed, **settings)
    save_wordpiece_tokenizer(directory, DISTILBERT_TINY["vocab_size"])
    return directory


def build_distilbert_heads(root: Path, first_seed: int) -> None:
    """`build_tf_distilbert` for every head, `root/<head>`."""
    for i, head in enumerate(DISTILBERT_HEAD_CLASSES):
        build_tf_distilbert(root / head, head, seed=first_seed + i)


# --- the trained MiniLM encoder in a DistilBERT shell ---

BERT_TO_DISTILBERT_LAYER = {  # BertLayer sub-module → DistilBERT TransformerBlock sub-module
    "attention.self.query": "attention.q_lin",
    "attention.self.key": "attention.k_lin",
    "attention.self.value": "attention.v_lin",
    "attention.output.dense": "attention.out_lin",
    "attention.output.LayerNorm": "sa_layer_norm",
    "intermediate.dense": "ffn.lin1",
    "output.dense": "ffn.lin2",
    "output.LayerNorm": "output_layer_norm",
}


def as_distilbert(tensors: dict[str, np.ndarray], positions: int) -> dict[str, np.ndarray]:
    """BERT base-model tensors under DistilBERT's names. DistilBERT has no token types: the
    trained token-type row 0, which BERT adds at every position, is folded into the first
    `positions` position rows, so the function is unchanged; the pooler has no counterpart."""
    out = {}
    token_type = tensors["embeddings.token_type_embeddings.weight"][0]
    position_table = tensors["embeddings.position_embeddings.weight"][:positions] + token_type
    out["embeddings.position_embeddings.weight"] = position_table
    for name in ("word_embeddings.weight", "LayerNorm.weight", "LayerNorm.bias"):
        out["embeddings." + name] = tensors["embeddings." + name]
    for name, value in tensors.items():
        if not name.startswith("encoder.layer."):
            continue
        layer, rest = name.removeprefix("encoder.layer.").split(".", 1)
        module, kind = rest.rsplit(".", 1)
        out[f"transformer.layer.{layer}.{BERT_TO_DISTILBERT_LAYER[module]}.{kind}"] = value
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def minilm_distilbert_h5(directory: Path, class_name: str, positions: int) -> Path:
    """The trained encoder in a PyTorch DistilBert* shell (head weights the trained model lacks
    from transformers' seeded initialiser), then the TF class `from_pt` saved as tf_model.h5,
    with MiniLM's vocabulary as a DistilBERT tokenizer beside it."""
    import transformers

    pt_dir = directory.with_name(directory.name + "-pt")
    minilm_distilbert_pt(pt_dir, class_name, positions)
    real_models.save_tf_h5(pt_dir, class_name, directory)
    # MiniLM's WordPiece vocabulary as DistilBERT ships it: a tokenizer without token types.
    tokenizer = transformers.DistilBertTokenizerFast.from_pretrained(str(real_models.minilm_dir()))
    tokenizer.save_pretrained(str(directory))
    return directory


def minilm_distilbert_pt(directory: Path, class_name: str, positions: int) -> Path:
    """The trained encoder in transformers' PyTorch `class_name`, its first `positions`
    positions kept; head weights the trained model lacks from transformers' seeded initialiser."""
    import transformers

    config = transformers.DistilBertConfig(
        **real_models.trained_settings(
            "vocab_size",
            "pad_token_id",
            dim="hidden_size",
            n_layers="num_hidden_layers",
            n_heads="num_attention_heads",
            hidden_dim="intermediate_size",
            activation="hidden_act",
        ),
        max_position_embeddings=positions,
    )
    trained = as_distilbert(real_models.minilm_tensors(), positions)
    prefix = "" if class_name == "DistilBertModel" else "distilbert."
    return real_models.save_shell(directory, class_name, config, trained, prefix)


def build_minilm_distilbert(root: Path, class_name: str, positions: int) -> None:
    """`minilm_distilbert_h5` into `root/h5` (its PyTorch shell beside, `root/h5-pt`)."""
    minilm_distilbert_h5(root / "h5", class_name, positions)
