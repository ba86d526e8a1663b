"""Write a tokenizer as standard Hugging Face files, with the `tokenizers` library only.

transformers would do this too, but importing it pulls in torch, and conversion alone must stay
light. The fast file (`tokenizer.json`) is built by `tokenizers`; `tokenizer_config.json` and
`special_tokens_map.json` are plain data per family; the slow files (`vocab.json` + `merges.txt`,
`vocab.txt`) are written beside them so the slow tokenizer classes load too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError

SPECIALS_FILE = "special_tokens_map.json"


@dataclass(frozen=True)
class Family:
    tokenizer_class: str
    slow_files: tuple[str, ...]
    specials: dict[str, str]  # HF role → token
    config: dict[str, Any]  # fixed tokenizer_config.json entries


FAMILIES: dict[str, Family] = {
    "roberta-bpe": Family(
        tokenizer_class="RobertaTokenizer",
        slow_files=("vocab.json", "merges.txt"),
        specials={
            "bos_token": "<s>",
            "eos_token": "</s>",
            "unk_token": "<unk>",
            "sep_token": "</s>",
            "pad_token": "<pad>",
            "cls_token": "<s>",
            "mask_token": "<mask>",
        },
        config={"errors": "replace", "trim_offsets": True, "clean_up_tokenization_spaces": False},
    ),
    "bert-wordpiece": Family(
        tokenizer_class="BertTokenizer",
        slow_files=("vocab.txt",),
        specials={
            "unk_token": "[UNK]",
            "sep_token": "[SEP]",
            "pad_token": "[PAD]",
            "cls_token": "[CLS]",
            "mask_token": "[MASK]",
        },
        config={"clean_up_tokenization_spaces": False},
    ),
}


def _json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _present_specials(family: Family, vocab: dict[str, int], where: Path) -> dict[str, str]:
    """The family's special tokens found in the vocabulary; a missing [CLS]/<s>-like token
    would be added with a new id past the embedding matrix, so it is left out instead (and the
    parity check then shows whether the source used it)."""
    present = {role: tok for role, tok in family.specials.items() if tok in vocab}
    if "cls_token" not in present or "sep_token" not in present:
        raise InputError(
            f"the vocabulary lacks {family.specials['cls_token']}/{family.specials['sep_token']}",
            where,
            "pass the tokenizer that belongs to this model with --tokenizer PATH",
        )
    return present


def _build_bpe(vocab_file: Path, merges_file: Path, options: dict[str, Any]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tokenizer = Tokenizer(models.BPE.from_file(str(vocab_file), str(merges_file)))
    prefix = bool(options.get("add_prefix_space", False))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer, prefix


def _build_wordpiece(vocab_file: Path, options: dict[str, Any]):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    tokenizer = Tokenizer(models.WordPiece.from_file(str(vocab_file), unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=options["tokenize_chinese_chars"],
        strip_accents=options["strip_accents"],
        lowercase=options["do_lower_case"],
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer


def write_hf_tokenizer(
    family_name: str,
    slow_files: dict[str, bytes],
    options: dict[str, Any],
    model_max_length: int,
    directory: Path,
) -> list[str]:
    """Write tokenizer.json, tokenizer_config.json, special_tokens_map.json and the slow files
    (given as name → bytes, named as HF expects) into `directory`; return the names written."""
    from tokenizers import AddedToken, processors

    family = FAMILIES[family_name]
    for name in family.slow_files:
        (directory / name).write_bytes(slow_files[name])
    if family_name == "roberta-bpe":
        tokenizer, prefix = _build_bpe(directory / "vocab.json", directory / "merges.txt", options)
    else:
        tokenizer = _build_wordpiece(directory / "vocab.txt", options)
    vocab = tokenizer.get_vocab()
    specials = _present_specials(family, vocab, directory)
    cls, sep = specials["cls_token"], specials["sep_token"]
    if family_name == "roberta-bpe":
        tokenizer.post_processor = processors.RobertaProcessing(
            (sep, vocab[sep]), (cls, vocab[cls]), trim_offsets=True, add_prefix_space=prefix
        )
    else:
        tokenizer.post_processor = processors.BertProcessing((sep, vocab[sep]), (cls, vocab[cls]))
    for role, token in sorted(specials.items(), key=lambda rt: vocab[rt[1]]):
        lstrip = role == "mask_token" and family_name == "roberta-bpe"
        tokenizer.add_special_tokens([AddedToken(token, lstrip=lstrip, normalized=False)])
    tokenizer.save(str(directory / "tokenizer.json"))
    config = {
        **family.config,
        **options,
        **specials,
        "tokenizer_class": family.tokenizer_class,
        "model_max_length": model_max_length,
    }
    _json(directory / "tokenizer_config.json", config)
    _json(directory / SPECIALS_FILE, specials)
    return [*family.slow_files, "tokenizer.json", "tokenizer_config.json", SPECIALS_FILE]
