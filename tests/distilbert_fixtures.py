"""DistilBERT sources made by the real producers: transformers' TFDistilBert* classes.

Tiny models (2 layers, 32 wide) with every weight randomised prove the table; the trained
all-MiniLM-L6-v2 encoder in a DistilBERT shell proves the parity gate at real activation scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import real_models
from .conftest import randomize_tf_weights

DISTILBERT_HEAD_CLASSES = {
    "base-model": "DistilBertModel",
    "masked-lm": "DistilBertForMaskedLM",
    "sequence-classification": "DistilBertForSequenceClassification",
    "token-classification": "DistilBertForTokenClassification",
    "question-answering": "DistilBertForQuestionAnswering",
    "multiple-choice": "DistilBertForMultipleChoice",
}
DISTILBERT_TINY = dict(
    vocab_size=99,
    dim=32,
    n_layers=2,
    n_heads=4,
    hidden_dim=37,
    max_position_embeddings=40,
    dropout=0.0,
    attention_dropout=0.0,
)
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
    """A TFDistilBert* model for `head`, every weight random, saved with save_pretrained."""
    import transformers

    config = transformers.DistilBertConfig(**DISTILBERT_TINY, **HEAD_SETTINGS.get(head, {}))
    model = getattr(transformers, "TF" + DISTILBERT_HEAD_CLASSES[head])(config)
    model(model.dummy_inputs)
    randomize_tf_weights(model, seed)
    model.save_pretrained(str(directory))
    save_wordpiece_tokenizer(directory, config.vocab_size)
    return directory


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
    import torch
    import transformers

    bert = real_models.bert_config()
    config = transformers.DistilBertConfig(
        vocab_size=bert.vocab_size,
        dim=bert.hidden_size,
        n_layers=bert.num_hidden_layers,
        n_heads=bert.num_attention_heads,
        hidden_dim=bert.intermediate_size,
        max_position_embeddings=positions,
        activation=bert.hidden_act,
        pad_token_id=bert.pad_token_id,
    )
    torch.manual_seed(0)
    model = getattr(transformers, class_name)(config)
    trained = as_distilbert(real_models.minilm_tensors(), positions)
    state = model.state_dict()
    prefix = "" if class_name == "DistilBertModel" else "distilbert."
    assert {prefix + k for k in trained} <= set(state)
    state.update({prefix + k: torch.from_numpy(v) for k, v in trained.items()})
    model.load_state_dict(state, strict=True)
    pt_dir = directory.with_name(directory.name + "-pt")
    model.save_pretrained(str(pt_dir))
    real_models.save_tf_h5(pt_dir, class_name, directory)
    # MiniLM's WordPiece vocabulary as DistilBERT ships it: a tokenizer without token types.
    tokenizer = transformers.DistilBertTokenizerFast.from_pretrained(str(real_models.minilm_dir()))
    tokenizer.save_pretrained(str(directory))
    return directory
