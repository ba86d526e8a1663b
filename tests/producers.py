"""Tiny models made by the real producer, transformers' TF classes, for every architecture.

One builder, `build_tf_model(arch, class_name, …)`: the architecture's tiny dimensions, every
weight random and distinct, saved with `save_pretrained`. Which class a head is comes from the
converter's own tables (`head_classes`), so no list here can drift from them; a wrong class there
builds a model whose weights and outputs the conversion tests then fail on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TINY = dict(  # RoBERTa (and its variants: XLM-RoBERTa, CamemBERT, PhoBERT)
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=40,
    type_vocab_size=1,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
    layer_norm_eps=1e-5,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)
BERT_TINY = {  # TINY's dimensions; BERT's own defaults for ids and eps, two token types
    **{k: v for k, v in TINY.items() if not k.endswith("token_id") and k != "layer_norm_eps"},
    "type_vocab_size": 2,
}
ALBERT_TINY = {
    **BERT_TINY,
    "embedding_size": 16,  # ≠ hidden_size: the factorised embeddings are projected
    "num_hidden_groups": 1,
    "inner_group_num": 1,
    "classifier_dropout_prob": 0.0,
}
ELECTRA_TINY = {
    **BERT_TINY,
    "embedding_size": 16,  # ≠ hidden_size: the embeddings are projected, as in ELECTRA-small
}
DISTILBERT_TINY = dict(  # DistilBERT names the same dimensions its own way
    vocab_size=99,
    dim=32,
    n_layers=2,
    n_heads=4,
    hidden_dim=37,
    max_position_embeddings=40,
    dropout=0.0,
    attention_dropout=0.0,
)
TINY_CONFIGS = {  # model_type → the tiny settings its TF classes are built with
    "roberta": TINY,
    "xlm-roberta": TINY,
    "camembert": TINY,
    "bert": BERT_TINY,
    "albert": ALBERT_TINY,
    "electra": ELECTRA_TINY,
    "distilbert": DISTILBERT_TINY,
}


def settings_as(settings: dict, *same: str, **renamed: str) -> dict:
    """`settings` for another producer's config class: the keys in `same` as they are, and each
    key of `renamed` with the value of the key it names (`num_layers="num_hidden_layers"`)."""
    return {key: settings[renamed.get(key, key)] for key in [*same, *renamed]}


def model_garden_settings(settings: dict) -> dict:
    """BertConfig-style `settings` as Model Garden's encoders name them (the inner size aside:
    BertEncoder calls it `intermediate_size`, BertEncoderV2 `inner_dim`)."""
    return settings_as(
        settings,
        "vocab_size",
        "hidden_size",
        "num_attention_heads",
        "type_vocab_size",
        num_layers="num_hidden_layers",
        max_sequence_length="max_position_embeddings",
    )


def head_classes(arch: str, layout: str = "hf-keras") -> dict[str, str]:
    """head → PyTorch class name, in the table's order, as the table `<arch>-<layout>` says."""
    from converter.tables import load_table

    table = load_table(f"{arch}-{layout}")
    return {head: table.class_name(head) for head in table.heads}


def source_classes(arch: str, layout: str) -> dict[str, str]:
    """head → the source framework's class (keras-hub's `RobertaBackbone`, …), from the table."""
    from converter.tables import load_table

    table = load_table(f"{arch}-{layout}")
    return {head: table.heads[head].source_class for head in table.heads}


def randomize_tf_weights(model, seed: int) -> None:
    """Overwrite every weight with distinct random values, so a misplaced zero bias or unit
    gamma cannot hide behind the initialiser's defaults."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape = tuple(w.shape)
        base = 1.0 if "gamma" in w.name else 0.0
        w.assign(base + rng.normal(0.0, 0.1, size=shape).astype(np.float32))


def build_tf_model(
    arch: str,
    class_name: str,
    directory: Path | None = None,
    seed: int = 0,
    save_kwargs: dict | None = None,
    keras_name: str | None = None,
    **overrides,
):
    """transformers' `TF<class_name>` with `arch`'s tiny config (`overrides` on top) and random
    weights; saved with `save_pretrained(directory, **save_kwargs)` when a directory is given.
    `keras_name` names the Keras model (else Keras numbers it after earlier models of its
    class). Returns the model."""
    import transformers

    config = transformers.AutoConfig.for_model(arch, **{**TINY_CONFIGS[arch], **overrides})
    named = {"name": keras_name} if keras_name else {}
    model = getattr(transformers, "TF" + class_name)(config, **named)
    model(model.dummy_inputs)
    randomize_tf_weights(model, seed)
    if directory is not None:
        model.save_pretrained(str(directory), **(save_kwargs or {}))
    return model


def save_tf_model(directory: Path, arch: str, class_name: str, **settings) -> None:
    """`build_tf_model` saved into `directory` (a fixture-cache builder)."""
    build_tf_model(arch, class_name, directory, **settings)


def build_every_head(
    root: Path,
    arch: str,
    first_seed: int,
    per_head: dict[str, dict] | None = None,
    **settings,
) -> dict[str, Path]:
    """One `save_pretrained` dir per head of `arch`'s table, `root/<head>`, seeds counting up
    from `first_seed` in the table's order; `settings` for all, `per_head` over them."""
    dirs = {}
    for i, (head, class_name) in enumerate(head_classes(arch).items()):
        extra = {**settings, **(per_head or {}).get(head, {})}
        build_tf_model(arch, class_name, root / head, seed=first_seed + i, **extra)
        dirs[head] = root / head
    return dirs
