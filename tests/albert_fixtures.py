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

from .conftest import bert_config_json
from .producers import ALBERT_TINY, build_tf_model, head_classes, settings_as  # noqa: F401
from .real_models import bert_config, minilm_tensors, save_shell, tf_model, trained_settings

ALBERT_HEAD_CLASSES = head_classes("albert")
HEAD_LABELS = {"question-answering": 2}  # start and end logits; other heads get 3
GROUPED = dict(num_hidden_layers=4, num_hidden_groups=2, inner_group_num=2)


def build_tf_albert(directory: Path, class_name: str, seed: int = 0, **overrides):
    """A transformers TFAlbert* model with distinct random weights, saved with save_pretrained."""
    return build_tf_model("albert", class_name, directory, seed, **overrides)


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
        **bert_config_json(config),  # its "gelu" too is modeling.py's tanh form
        **settings_as(config.to_dict(), "embedding_size", "num_hidden_groups", "inner_group_num"),
        "net_structure_type": 0,
        "gap_size": 0,
        "num_memory_blocks": 0,
        "down_scale_factor": 1,
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
    settings = trained_settings(
        "vocab_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "hidden_act",
        "type_vocab_size",
        "layer_norm_eps",
        "pad_token_id",
        embedding_size="hidden_size",
        hidden_size="hidden_size",
        num_hidden_groups="num_hidden_layers",  # a group per layer: nothing shared
    )
    return out, {**settings, "inner_group_num": 1, "max_position_embeddings": positions}


def save_minilm_albert_pt(directory: Path, class_name: str, positions: int = 128) -> Path:
    """A PyTorch `save_pretrained` dir of the trained encoder in an Albert* class; head weights
    the trained model lacks are transformers' own initialisation, seeded."""
    import transformers

    tensors, settings = minilm_as_albert(positions)
    prefix = "" if class_name == "AlbertModel" else "albert."
    tied = {"predictions.decoder.weight": "albert.embeddings.word_embeddings.weight"}
    config = transformers.AlbertConfig(**settings)
    return save_shell(directory, class_name, config, tensors, prefix, tied)


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


# --- the session's sources ---


def build_albert_heads(root: Path, first_seed: int) -> None:
    """One tf_model.h5 per head, `root/<head>`; multiple choice with two layer groups of two
    inner layers; the pretraining one with its HF tokenizer beside it."""
    for i, (head, cls) in enumerate(ALBERT_HEAD_CLASSES.items()):
        extra = GROUPED if head == "multiple-choice" else {}
        labels = HEAD_LABELS.get(head, 3)
        build_tf_albert(root / head, cls, seed=first_seed + i, num_labels=labels, **extra)
    save_albert_tokenizer(root / "pretraining")


TF1_GROUPED = dict(num_hidden_layers=4, num_hidden_groups=2)  # layers 0, 1: group_0; 2, 3: 1
TF1_KINDS = {  # kind → (the TFAlbert* class whose weights it holds, label count, more config)
    "pretraining": (ALBERT_HEAD_CLASSES["pretraining"], 2, {}),  # sentence order: 2 classes
    "classifier": (ALBERT_HEAD_CLASSES["sequence-classification"], 3, TF1_GROUPED),
    "squad": (ALBERT_HEAD_CLASSES["question-answering"], 2, {}),  # squad_utils.py v1
}


def build_albert_tf1_checkpoints(root: Path, first_seed: int) -> None:
    """Per kind, `root/<kind>-hf` (the TFAlbert* save) and `root/<kind>`, its TF1 checkpoint."""
    for i, (kind, (cls, labels, extra)) in enumerate(TF1_KINDS.items()):
        model = build_tf_albert(
            root / f"{kind}-hf", cls, seed=first_seed + i, num_labels=labels, **extra
        )
        save_albert_tf1_checkpoint(model, root / kind)


def build_minilm_albert(root: Path) -> None:
    """The trained encoder in AlbertForPreTraining: `root/pt` (PyTorch), `root/h5` (the TF
    class from it) and `root/tf1` (that model as a google-research/albert checkpoint)."""
    pt_dir = save_minilm_albert_pt(root / "pt", "AlbertForPreTraining")
    model = tf_model(pt_dir, "AlbertForPreTraining")
    model.save_pretrained(str(root / "h5"))
    save_albert_tf1_checkpoint(model, root / "tf1")
