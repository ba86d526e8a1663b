"""ALBERT sources made by the real producers: transformers' TFAlbert* classes (tf_model.h5), and
google-research/albert TF1 checkpoints written by TF's own Saver from those classes' weights,
renamed to modeling.py's variable names.

The names below are written from google-research/albert's modeling.py (AlbertModel,
transformer_model, attention_ffn_block), run_pretraining.py (get_masked_lm_output,
get_sentence_order_output), classifier_utils.py (create_model) and squad_utils.py (v1
create_v1_model), independently of the converter's tables, so the tests check the tables rather
than repeat them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from .conftest import randomize_tf_weights

ALBERT_TINY = dict(
    vocab_size=99,
    embedding_size=16,  # ≠ hidden_size: the factorised embeddings are projected
    hidden_size=32,
    num_hidden_layers=2,
    num_hidden_groups=1,
    inner_group_num=1,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=40,
    type_vocab_size=2,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    classifier_dropout_prob=0.0,
)
ALBERT_HEAD_CLASSES = {
    "base-model": "AlbertModel",
    "pretraining": "AlbertForPreTraining",
    "masked-lm": "AlbertForMaskedLM",
    "sequence-classification": "AlbertForSequenceClassification",
    "token-classification": "AlbertForTokenClassification",
    "question-answering": "AlbertForQuestionAnswering",
    "multiple-choice": "AlbertForMultipleChoice",
}
HEAD_LABELS = {"question-answering": 2}  # start and end logits; other heads get 3


def build_tf_albert(directory: Path, class_name: str, seed: int = 0, **overrides):
    """A transformers TFAlbert* model with distinct random weights, saved with save_pretrained."""
    import transformers

    config = transformers.AlbertConfig(**{**ALBERT_TINY, **overrides})
    model = getattr(transformers, "TF" + class_name)(config)
    model(model.dummy_inputs)
    randomize_tf_weights(model, seed)
    model.save_pretrained(str(directory))
    return model


# modeling.py attention_ffn_block: the scopes of one shared layer, by TFAlbertLayer's names.
TF1_LAYER_SCOPES = {
    "attention/query": "attention_1/self/query",
    "attention/key": "attention_1/self/key",
    "attention/value": "attention_1/self/value",
    "attention/dense": "attention_1/output/dense",
    "attention/LayerNorm": "LayerNorm",  # layer_norm(attention_output + layer_input)
    "ffn": "ffn_1/intermediate/dense",
    "ffn_output": "ffn_1/intermediate/output/dense",
    "full_layer_layer_norm": "LayerNorm_1",  # the block's second layer_norm
}
TF1_HEAD_NAMES = {  # TFAlbert* head weight → (google-research/albert name, stored transposed)
    "predictions/dense/kernel": ("cls/predictions/transform/dense/kernel", False),
    "predictions/dense/bias": ("cls/predictions/transform/dense/bias", False),
    "predictions/LayerNorm/gamma": ("cls/predictions/transform/LayerNorm/gamma", False),
    "predictions/LayerNorm/beta": ("cls/predictions/transform/LayerNorm/beta", False),
    "predictions/decoder/bias": ("cls/predictions/output_bias", False),  # what TF adds
    "sop_classifier/classifier/kernel": ("cls/seq_relationship/output_weights", True),
    "sop_classifier/classifier/bias": ("cls/seq_relationship/output_bias", False),
    "classifier/kernel": ("output_weights", True),  # classifier_utils.py create_model
    "classifier/bias": ("output_bias", False),
    "qa_outputs/kernel": ("cls/squad/output_weights", True),  # squad_utils.py (v1)
    "qa_outputs/bias": ("cls/squad/output_bias", False),
}
LAYER = re.compile(r"albert/encoder/albert_layer_groups_\._(\d+)/albert_layers_\._(\d+)/(.+)/(\w+)")


def tf1_albert_name(keras_name: str) -> tuple[str, bool] | None:
    """google-research/albert's name for a TFAlbert* weight and whether it is stored transposed;
    None for TFAlbertMLMHead's unused `bias`, which modeling.py has no counterpart of."""
    name = keras_name.split("/", 1)[1].removesuffix(":0")
    if name == "predictions/bias":
        return None
    if name in TF1_HEAD_NAMES:
        return TF1_HEAD_NAMES[name]
    m = LAYER.fullmatch(name)
    if m:
        group, inner, scope, leaf = m.groups()
        return (
            f"bert/encoder/transformer/group_{group}/inner_group_{inner}/"
            f"{TF1_LAYER_SCOPES[scope]}/{leaf}",
            False,
        )
    if name.startswith("albert/pooler/"):
        return name.replace("albert/pooler/", "bert/pooler/dense/"), False
    if name.startswith("albert/embeddings/") and "LayerNorm" not in name:
        name = name.rsplit("/", 1)[0]  # Keras embedding layers add /weight or /embeddings
    return name.replace("albert/", "bert/", 1), False


def albert_config_json(config) -> dict:
    """The keys google-research/albert's AlbertConfig writes (albert_config.json)."""
    return {
        "attention_probs_dropout_prob": config.attention_probs_dropout_prob,
        "hidden_act": "gelu",  # modeling.py's gelu: the tanh form (transformers' gelu_new)
        "hidden_dropout_prob": config.hidden_dropout_prob,
        "embedding_size": config.embedding_size,
        "hidden_size": config.hidden_size,
        "initializer_range": config.initializer_range,
        "intermediate_size": config.intermediate_size,
        "max_position_embeddings": config.max_position_embeddings,
        "num_attention_heads": config.num_attention_heads,
        "num_hidden_layers": config.num_hidden_layers,
        "num_hidden_groups": config.num_hidden_groups,
        "net_structure_type": 0,
        "gap_size": 0,
        "num_memory_blocks": 0,
        "inner_group_num": config.inner_group_num,
        "down_scale_factor": 1,
        "type_vocab_size": config.type_vocab_size,
        "vocab_size": config.vocab_size,
    }


def save_albert_tf1_checkpoint(model, directory: Path, step: int = 100) -> Path:
    """A TFAlbert* model's weights as a google-research/albert TF1 checkpoint, written by TF's
    Saver with the optimizer's slots (`…/adam_m`, `…/adam_v`: lamb_optimizer.py, the default of
    run_pretraining.py, names them as AdamWeightDecayOptimizer does) and global_step, plus
    albert_config.json. Returns the checkpoint directory."""
    import tensorflow as tf

    rng = np.random.default_rng(step)
    saved: dict[str, tf.Variable] = {}
    for w in model.weights:
        named = tf1_albert_name(w.name)
        if named is None:
            continue
        name, transposed = named
        value = w.numpy().T if transposed else w.numpy()
        saved[name] = tf.Variable(value)
        for slot in ("adam_m", "adam_v"):
            saved[f"{name}/{slot}"] = tf.Variable(rng.normal(0, 1e-3, value.shape).astype("f4"))
    saved["global_step"] = tf.Variable(np.int64(step))
    directory.mkdir(parents=True, exist_ok=True)
    tf.compat.v1.train.Saver(var_list=saved).save(None, str(directory / "model.ckpt-best"))
    (directory / "albert_config.json").write_text(json.dumps(albert_config_json(model.config)))
    return directory


# --- real trained weights: all-MiniLM-L6-v2 (BERT, 6 × 384) in an ALBERT shell ---

BERT_TO_ALBERT_LAYER = {  # a BERT layer's parameters → the ALBERT layer's (same computation)
    "attention.self.query": "attention.query",
    "attention.self.key": "attention.key",
    "attention.self.value": "attention.value",
    "attention.output.dense": "attention.dense",
    "attention.output.LayerNorm": "attention.LayerNorm",
    "intermediate.dense": "ffn",
    "output.dense": "ffn_output",
    "output.LayerNorm": "full_layer_layer_norm",
}


def minilm_as_albert(positions: int) -> tuple[dict[str, np.ndarray], dict]:
    """The trained tensors under AlbertModel's names, and the AlbertConfig settings that make
    ALBERT compute what the trained BERT computes: one layer group per layer (nothing shared),
    embedding_size = hidden_size with an identity embedding_hidden_mapping_in, the first
    `positions` trained position rows."""
    from .real_models import bert_config, minilm_tensors

    bert = bert_config()
    out = {}
    for name, value in minilm_tensors().items():
        if name.startswith("embeddings.position_ids"):
            continue
        if name.startswith("encoder.layer."):
            _, _, layer, rest = name.split(".", 3)
            role, kind = rest.rsplit(".", 1)
            albert_role = BERT_TO_ALBERT_LAYER[role]
            name = f"encoder.albert_layer_groups.{layer}.albert_layers.0.{albert_role}.{kind}"
        out[name.replace("pooler.dense.", "pooler.")] = value
    out["embeddings.position_embeddings.weight"] = out["embeddings.position_embeddings.weight"][
        :positions
    ]
    width = bert.hidden_size
    out["encoder.embedding_hidden_mapping_in.weight"] = np.eye(width, dtype=np.float32)
    out["encoder.embedding_hidden_mapping_in.bias"] = np.zeros(width, dtype=np.float32)
    settings = dict(
        vocab_size=bert.vocab_size,
        embedding_size=width,
        hidden_size=width,
        num_hidden_layers=bert.num_hidden_layers,
        num_hidden_groups=bert.num_hidden_layers,
        inner_group_num=1,
        num_attention_heads=bert.num_attention_heads,
        intermediate_size=bert.intermediate_size,
        hidden_act=bert.hidden_act,
        max_position_embeddings=positions,
        type_vocab_size=bert.type_vocab_size,
        layer_norm_eps=bert.layer_norm_eps,
        pad_token_id=bert.pad_token_id,
    )
    return out, settings


def save_minilm_albert_pt(directory: Path, class_name: str, positions: int = 128) -> Path:
    """A PyTorch `save_pretrained` dir of the trained encoder in an Albert* class; head weights
    the trained model lacks are transformers' own initialisation, seeded."""
    import torch
    import transformers

    tensors, settings = minilm_as_albert(positions)
    torch.manual_seed(0)
    model = getattr(transformers, class_name)(transformers.AlbertConfig(**settings))
    state = model.state_dict()
    prefix = "" if class_name == "AlbertModel" else "albert."
    unknown = {prefix + k for k in tensors} - set(state)
    assert not unknown, unknown
    state.update(
        {prefix + k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()}
    )
    if "predictions.decoder.weight" in state:  # tied: both keys load into one tensor
        state["predictions.decoder.weight"] = state["albert.embeddings.word_embeddings.weight"]
    model.load_state_dict(state, strict=True)
    model.save_pretrained(str(directory))
    return directory


TOKENIZER_TEXT = [
    "The quick brown fox jumps over the lazy dog.",
    "ALBERT shares its layers across groups.",
    "Hello world, tokenizers are fun!",
]


def save_albert_tokenizer(directory: Path) -> Path:
    """An HF ALBERT tokenizer as AlbertTokenizerFast.save_pretrained writes it (spiece.model,
    tokenizer.json, tokenizer_config.json, special_tokens_map.json), from a SentencePiece
    unigram model trained here with ALBERT's special pieces, its ids below ALBERT_TINY's 99."""
    import io
    import tempfile

    import sentencepiece
    import transformers

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(TOKENIZER_TEXT * 20),
        model_writer=model,
        vocab_size=60,
        hard_vocab_limit=False,
        model_type="unigram",
        pad_id=0,
        unk_id=1,
        bos_id=-1,
        eos_id=-1,
        user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"],
        minloglevel=2,
    )
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "spiece.model").write_bytes(model.getvalue())
        transformers.AlbertTokenizer(str(Path(tmp) / "spiece.model")).save_pretrained(tmp)
        transformers.AlbertTokenizerFast.from_pretrained(tmp).save_pretrained(str(directory))
    return directory
