"""The two Hugging Face tokenizers a converted source could get: the faithful one (the source's
own rules, reproduced) and the family's canonical one (what transformers builds for the family's
class). Built in memory with the `tokenizers` library; nothing is written here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from .build_bpe import byte_level_bpe, read_merges
from .build_spm import number_pieces, sentencepiece
from .build_wordpiece import STAND_IN, read_vocab, wordpiece
from .families import Family, PieceLayout, load_families
from .fastbpe import SPECIALS as FAIRSEQ_SPECIALS
from .fastbpe import read_dictionary
from .sources import TokenizerPlan
from .spm_model import SentencePieceModel, read_model

WORDPIECE_RULES = {
    "keras-hub-wordpiece": "keras-hub",
    "google-research-bert": "google-research-bert",
}
SPM_RULES = {"google-research-albert": "google-research-albert"}  # else plain SentencePiece
FAIRSEQ_PADDING = "madeupword{:04d}"  # fairseq's dictionary padding
FAIRSEQ_MASK = "<mask>"  # appended last by fairseq's masked-LM task


@dataclass
class Built:
    faithful: Any | None  # a tokenizers.Tokenizer reproducing the source; None: not expressible
    canonical: Any | None  # the family's Hugging Face tokenizer; None: its class is Python only
    canonical_options: dict[str, Any]  # tokenizer_config settings of the canonical one
    family: Family
    slow_ok: bool = True  # the family's slow files number tokens as the faithful one does
    evidence: list[str] = field(default_factory=list)
    class_ok: bool = True  # the family's class holds this tokenizer's model

    @property
    def same(self) -> bool:
        """Whether the source's rules are the family's canonical ones (the same pipeline)."""
        if self.faithful is None or self.canonical is None:
            return self.faithful is None and self.canonical is None
        return self.faithful.to_str() == self.canonical.to_str()


def _bpe(plan: TokenizerPlan, family: Family) -> Built:
    try:
        vocab = json.loads(plan.files["vocab.json"])
    except ValueError as exc:
        raise InputError(f"the BPE vocabulary is not JSON ({exc})", plan.origin) from None
    merges = read_merges(plan.files["merges.txt"].decode("utf-8"))
    prefix = bool(plan.options.get("add_prefix_space", False))
    split = "keras-hub" if plan.rules == "keras-hub-bpe" else "gpt2"
    return Built(
        byte_level_bpe(vocab, merges, split, prefix),
        byte_level_bpe(vocab, merges, "gpt2", prefix),
        {"add_prefix_space": prefix},
        family,
    )


def _wordpiece(plan: TokenizerPlan, family: Family) -> Built:
    vocab = read_vocab(plan.files["vocab.txt"].decode("utf-8"))
    if any(STAND_IN in token for token in vocab):
        raise InputError(
            f"the vocabulary holds U+{ord(STAND_IN):04X}, which the keras-hub pipeline reserves",
            plan.origin,
        )
    canonical_options = {
        "do_lower_case": bool(plan.options.get("do_lower_case")),
        "strip_accents": None,  # Hugging Face's BertTokenizer: stripped when lowercasing
        "tokenize_chinese_chars": bool(plan.options.get("tokenize_chinese_chars", True)),
    }
    faithful = wordpiece(vocab, WORDPIECE_RULES.get(plan.rules, "hf"), plan.options)
    return Built(faithful, wordpiece(vocab, "hf", canonical_options), canonical_options, family)


def _layout_order(model: SentencePieceModel, layout: PieceLayout) -> list[str]:
    pieces = [p.piece for p in model.pieces[layout.pieces_from :]]
    return [*layout.head, *pieces, *layout.tail]


def _fairseq_order(
    model: SentencePieceModel, dictionary: bytes, rows: int | None, origin: str
) -> list[str]:
    """fairseq's numbering: its specials, dict.txt's entries, madeupword padding up to the
    embedding's rows but one, then <mask> (without the rows: no padding)."""
    tokens = read_dictionary(dictionary.decode("utf-8"), origin)
    padding = max(0, rows - len(tokens) - 1) if rows is not None else 0
    if rows is None or rows > len(tokens):
        tokens += [FAIRSEQ_PADDING.format(i) for i in range(padding)] + [FAIRSEQ_MASK]
    return tokens


def _fairseq_family(
    model: SentencePieceModel, order: list[str], plan: TokenizerPlan
) -> tuple[Family, list[str], bool]:
    """The first candidate family whose numbering dict.txt follows (its own token list and slow
    files then agree); else the first family, with dict.txt's numbering in tokenizer.json only."""
    families = load_families()
    release = next(r for r in families.releases if r.rules == plan.rules)
    candidates = [families.family(name) for name in release.families]
    for family in candidates:
        if family.layout is None:
            continue
        expected = _layout_order(model, family.layout)
        start, end = len(family.layout.head), len(expected) - len(family.layout.tail)
        if len(order) == len(expected) and order[start:end] == expected[start:end]:
            return family, expected, True
    return candidates[0], order, False


def _sentencepiece(plan: TokenizerPlan, family: Family) -> Built:
    model = read_model(plan.files[family.slow_files[0]], plan.origin)
    evidence: list[str] = []
    slow_ok = True
    if "dict.txt" in plan.files:
        order = _fairseq_order(model, plan.files["dict.txt"], plan.vocab_size, plan.origin)
        family, order, slow_ok = _fairseq_family(model, order, plan)
        plan.family = family.name
        missing = [p.piece for p in model.pieces if p.piece not in set(order)]
        if missing:
            evidence.append(
                f"{len(missing)} SentencePiece pieces are not in dict.txt (fairseq numbers them "
                f"<unk>), e.g. {', '.join(missing[:3])}"
            )
        evidence.append(
            f"dict.txt numbers the pieces as {family.tokenizer_class} does"
            if slow_ok
            else "dict.txt numbers the pieces its own way: only tokenizer.json carries it"
        )
    elif family.layout is not None:
        order = _layout_order(model, family.layout)
    else:
        order = None
    unk = FAIRSEQ_SPECIALS[3] if order is not None else model.pieces[model.unk_id].piece
    albert = family.name == "albert-spm"
    canonical_options = {"do_lower_case": True, "keep_accents": False} if albert else {}
    lowercase = bool(plan.options.get("do_lower_case", False))
    rules = SPM_RULES.get(plan.rules, "sentencepiece")
    canonical = sentencepiece(
        model, number_pieces(model, order, unk, albert), "hf", family.name, albert
    )
    if rules == "sentencepiece" and not albert and _canonical_is_sentencepiece(model):
        faithful = canonical
    else:
        numbers = number_pieces(model, order, unk, albert and rules != "sentencepiece")
        faithful = sentencepiece(model, numbers, rules, family.name, lowercase)
    class_ok = not family.class_models or model.kind in family.class_models
    if not class_ok:
        evidence.append(
            f"a SentencePiece {model.kind} model: {family.tokenizer_class} holds "
            f"{'/'.join(sorted(family.class_models))} ones only"
        )
    return Built(
        faithful, canonical, canonical_options, family, slow_ok and class_ok, evidence, class_ok
    )


def _canonical_is_sentencepiece(model: SentencePieceModel) -> bool:
    """transformers' SentencePiece conversion (character map, trailing spaces stripped, runs of
    spaces to one `▁`, one `▁` in front) is SentencePiece's own encoding for a model that maps
    characters by a table and removes extra whitespace, as XLM-R's and CamemBERT's do."""
    return bool(
        model.precompiled_charsmap
        and model.remove_extra_whitespaces
        and model.add_dummy_prefix
        and model.escape_whitespaces
        and model.split_by_whitespace
        and not model.treat_whitespace_as_suffix
    )


def _fastbpe(plan: TokenizerPlan, family: Family) -> Built:
    return Built(None, None, {}, family)


BUILDERS = {
    "byte-level-bpe": _bpe,
    "wordpiece": _wordpiece,
    "sentencepiece": _sentencepiece,
    "fastbpe": _fastbpe,
}


def build(plan: TokenizerPlan) -> Built:
    family = load_families().family(plan.family)
    try:
        return BUILDERS[family.model](plan, family)
    except (KeyError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(
            f"the {family.name} tokenizer files cannot be read ({type(exc).__name__}: {exc})",
            plan.origin,
        ) from None
