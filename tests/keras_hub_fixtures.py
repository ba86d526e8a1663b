"""keras-hub's encoder family made by keras-hub itself from real trained weights.

all-MiniLM-L6-v2 (tests/real_weights.py) is put into a transformers shell of each architecture
(BERT as it is; XLM-RoBERTa, ALBERT and DistilBERT shells that compute what the trained model
computes: see real_models.as_roberta, albert_fixtures.minilm_as_albert,
distilbert_fixtures.as_distilbert), saved with save_pretrained, and imported by keras-hub's own
`from_preset(<Hugging Face dir>)`. keras-hub 0.32 has no importer for ELECTRA, so its
ElectraBackbone is built here and the trained tensors assigned to its variables. Task heads the
trained model lacks are keras-hub's own initialisation, seeded. The first POSITIONS position rows
are kept (a model fine-tuned for short inputs), which keeps every parity run cheap.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import real_models

POSITIONS = 64
NUM_CLASSES = 3


@dataclass(frozen=True)
class Family:
    """keras-hub's classes for one architecture, by head, and transformers' class each becomes."""

    keras: dict[str, str]
    transformers: dict[str, str]
    model_type: str  # of the converted config.json


def _family(keras_prefix: str, hf_prefix: str, model_type: str, tasks: bool = True) -> Family:
    keras = {"base-model": f"{keras_prefix}Backbone"}
    hf = {"base-model": f"{hf_prefix}Model"}
    if tasks:
        keras |= {
            "sequence-classification": f"{keras_prefix}TextClassifier",
            "masked-lm": f"{keras_prefix}MaskedLM",
        }
        hf |= {
            "sequence-classification": f"{hf_prefix}ForSequenceClassification",
            "masked-lm": f"{hf_prefix}ForMaskedLM",
        }
    return Family(keras, hf, model_type)


FAMILIES = {
    "bert": _family("Bert", "Bert", "bert"),
    "xlm-roberta": _family("XLMRoberta", "XLMRoberta", "xlm-roberta"),
    "albert": _family("Albert", "Albert", "albert"),
    "distilbert": _family("DistilBert", "DistilBert", "distilbert"),
    "electra": _family("Electra", "Electra", "electra", tasks=False),  # keras-hub has no tasks
}
CASES = [(arch, head) for arch, family in FAMILIES.items() for head in family.keras]


def _minilm(positions: int) -> dict[str, np.ndarray]:
    tensors = real_models.minilm_tensors()
    tensors.pop("embeddings.position_ids", None)
    table = "embeddings.position_embeddings.weight"
    tensors[table] = tensors[table][:positions]
    return tensors


def _xlm_roberta_shell(directory: Path) -> Path:
    """XLMRobertaForMaskedLM (the class keras-hub's importer reads) around the trained encoder
    in RoBERTa's conventions; its LM head, which the trained model lacks, is transformers'."""
    import transformers

    config = transformers.XLMRobertaConfig(
        **real_models.trained_settings(
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
        ),
        max_position_embeddings=POSITIONS + 2,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        **real_models.ROBERTA_IDS,
    )
    tensors = real_models.as_roberta(_minilm(POSITIONS))
    tensors = {k: v for k, v in tensors.items() if not k.startswith("pooler.")}
    return real_models.save_shell(directory, "XLMRobertaForMaskedLM", config, tensors, "roberta.")


def _distilbert_shell(directory: Path) -> Path:
    """DistilBertForMaskedLM around the trained encoder (keras-hub's importer reads
    `distilbert.`-prefixed names)."""
    from .distilbert_fixtures import minilm_distilbert_pt

    return minilm_distilbert_pt(directory, "DistilBertForMaskedLM", POSITIONS)


# Architectures whose keras-hub tokenizer the trained model's own vocabulary (MiniLM's WordPiece
# vocab.txt, uncased) serves; keras-hub's importer builds their preprocessors from these files.
WORDPIECE = {"bert", "distilbert"}
TOKENIZER_FILES = ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


def save_shell(arch: str, directory: Path) -> Path:
    """The trained encoder as a transformers save_pretrained dir of `arch` (not ELECTRA), with
    the trained model's tokenizer files where keras-hub's tokenizer for `arch` can read them."""
    if arch == "bert":
        real_models.save_pretrained_pt(directory, "bert", positions=POSITIONS)
    elif arch == "albert":
        from .albert_fixtures import save_minilm_albert_pt

        # keras-hub's importer reads `albert.`-prefixed names, the pooler included
        save_minilm_albert_pt(directory, "AlbertForPreTraining", positions=POSITIONS)
    elif arch == "distilbert":
        _distilbert_shell(directory)
    else:
        _xlm_roberta_shell(directory)
    if arch in WORDPIECE:
        for name in TOKENIZER_FILES:
            shutil.copyfile(real_models.minilm_dir() / name, directory / name)
    return directory


def electra_backbone():
    """keras-hub's ElectraBackbone holding the trained tensors (embedding_dim = hidden_dim, so no
    projection), assigned variable by variable in keras-hub's own layouts."""
    import keras_hub

    bert = real_models.bert_config()
    heads, width = bert.num_attention_heads, bert.hidden_size
    backbone = keras_hub.models.ElectraBackbone(
        vocab_size=bert.vocab_size,
        num_layers=bert.num_hidden_layers,
        num_heads=heads,
        hidden_dim=width,
        embedding_dim=width,
        intermediate_dim=bert.intermediate_size,
        max_sequence_length=POSITIONS,
        dropout=0.0,
    )
    t = _minilm(POSITIONS)
    backbone.token_embedding.embeddings.assign(t["embeddings.word_embeddings.weight"])
    backbone.position_embedding.position_embeddings.assign(
        t["embeddings.position_embeddings.weight"]
    )
    backbone.segment_embedding.embeddings.assign(t["embeddings.token_type_embeddings.weight"])
    backbone.embeddings_layer_norm.gamma.assign(t["embeddings.LayerNorm.weight"])
    backbone.embeddings_layer_norm.beta.assign(t["embeddings.LayerNorm.bias"])
    for i, layer in enumerate(backbone.transformer_layers):
        p = f"encoder.layer.{i}."
        attention = layer._self_attention_layer
        for keras_name, hf_name in (("query", "query"), ("key", "key"), ("value", "value")):
            dense = getattr(attention, f"{keras_name}_dense")
            weight = t[f"{p}attention.self.{hf_name}.weight"]  # [out, in]
            dense.kernel.assign(weight.T.reshape(width, heads, -1))
            dense.bias.assign(t[f"{p}attention.self.{hf_name}.bias"].reshape(heads, -1))
        out = attention.output_dense
        out.kernel.assign(t[f"{p}attention.output.dense.weight"].T.reshape(heads, -1, width))
        out.bias.assign(t[f"{p}attention.output.dense.bias"])
        pairs = (
            (layer._self_attention_layer_norm, "attention.output.LayerNorm"),
            (layer._feedforward_layer_norm, "output.LayerNorm"),
        )
        for norm, name in pairs:
            norm.gamma.assign(t[f"{p}{name}.weight"])
            norm.beta.assign(t[f"{p}{name}.bias"])
        for dense, name in (
            (layer._feedforward_intermediate_dense, "intermediate.dense"),
            (layer._feedforward_output_dense, "output.dense"),
        ):
            dense.kernel.assign(t[f"{p}{name}.weight"].T)
            dense.bias.assign(t[f"{p}{name}.bias"])
    backbone.pooled_dense.kernel.assign(t["pooler.dense.weight"].T)
    backbone.pooled_dense.bias.assign(t["pooler.dense.bias"])
    return backbone


def keras_hub_model(arch: str, head: str, shell: Path | None, seed: int):
    """keras-hub's model for `head`, imported by keras-hub from the shell (ELECTRA: built);
    heads keras-hub initialises with `seed`. Task models of the WordPiece architectures carry
    keras-hub's own preprocessor (so their presets hold its tokenizer); the others none (their
    SentencePiece tokenizers are proven by the tokenizer tests)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    if arch == "electra":
        return electra_backbone()
    cls = getattr(keras_hub.models, FAMILIES[arch].keras[head])
    if head == "base-model":
        return cls.from_preset(str(shell))
    extra = {"num_classes": NUM_CLASSES} if head == "sequence-classification" else {}
    if arch not in WORDPIECE:
        extra["preprocessor"] = None
    return cls.from_preset(str(shell), **extra)


FORMS = ("preset", "model.keras", "model.weights.h5")


def save_forms(model, directory: Path, forms: tuple[str, ...] = FORMS) -> dict[str, Path]:
    """The model as keras-hub users keep it: save_to_preset, model.save, save_weights (those of
    `forms`; a MiniLM-sized model is 90 MB in each)."""
    directory.mkdir(parents=True)
    savers = {"preset": model.save_to_preset, "model.keras": model.save}
    for form in forms:
        savers.get(form, model.save_weights)(str(directory / form))
    return {form: directory / form for form in forms}
