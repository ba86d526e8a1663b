"""SentencePiece models as `tokenizers` pipelines, numbered as the model's embeddings are.

Faithful pipelines reproduce what SentencePiece itself does (`sentencepiece`'s processor, which
keras-hub's SentencePieceTokenizer and fairseq's encoder call): the model's own character map,
whitespace stripped and runs collapsed, `▁` for spaces with one in front, Viterbi (unigram) or
score-ordered merges (BPE). `google-research-albert` adds what ALBERT's tokenization.py does
first: whitespace runs to one space, ``` `` ``` and `''` to `"`, NFKD without combining marks,
lowercasing, and pieces ending in a digit and a comma split before the comma (approximated as
Hugging Face's ALBERT does, by making such pieces 100 nats dearer). The canonical pipelines
are the ones transformers builds for the family's tokenizer class.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache

from .build_wordpiece import final_sigma
from .spm_model import BPE, CONTROL, UNIGRAM, UNUSED, USER_DEFINED, SentencePieceModel

SPACE_MARK = "\u2581"
DIGIT_COMMA_PENALTY = 100.0
# Python's str.split() whitespace, which ALBERT's tokenizer collapses to one space.
PY_WHITESPACE = (
    r"[\t\n\x{b}\f\r\x{1c}-\x{1f} \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}"
    r"\x{202f}\x{205f}\x{3000}]+"
)
RULES = ("sentencepiece", "google-research-albert", "hf")


@dataclass(frozen=True)
class Numbered:
    """The tokenizer's vocabulary in embedding order: (piece, score) per id, the unknown id,
    and the ids of the model's special pieces (control, user-defined) under their strings."""

    vocab: list[tuple[str, float]]
    unk_id: int
    specials: dict[str, int]
    user_defined: dict[str, int]


def _ends_in_digit_comma(piece: str) -> bool:
    return len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit()


def number_pieces(
    model: SentencePieceModel,
    order: list[str] | None,
    unk: str,
    albert_penalty: bool = False,
) -> Numbered:
    """Number the model's pieces by `order` (the token of each id; None: the model's own ids).
    Tokens the model lacks (specials of the family, padding) get a score no segmentation picks.
    """
    scores = {p.piece: p.score for p in model.pieces}
    floor = min(scores.values(), default=0.0) - 1000.0
    kinds = {p.piece: p.type for p in model.pieces}
    tokens = order if order is not None else [p.piece for p in model.pieces]
    vocab = []
    for token in tokens:
        score = scores.get(token, floor)
        if kinds.get(token) in (CONTROL, UNUSED):
            score = 0.0 if kinds[token] == CONTROL else floor
        if albert_penalty and _ends_in_digit_comma(token):
            score -= DIGIT_COMMA_PENALTY
        vocab.append((token, score))
    ids: dict[str, int] = {}
    for i, (token, _) in enumerate(vocab):
        ids.setdefault(token, i)
    specials = {t: ids[t] for t, k in kinds.items() if k == CONTROL and t in ids}
    user = {t: ids[t] for t, k in kinds.items() if k == USER_DEFINED and t in ids}
    return Numbered(vocab, ids.get(unk, model.unk_id), specials, user)


def _bpe_merges(vocab: list[tuple[str, float]]) -> list[tuple[str, str]]:
    """Merges of a SentencePiece BPE model: every split of a piece into two pieces, ranked by
    the merged piece's score (SentencePiece merges the pair whose result scores best)."""
    known = {t for t, _ in vocab}
    ranked = sorted(range(len(vocab)), key=lambda i: (-vocab[i][1], i))
    merges = []
    for i in ranked:
        token = vocab[i][0]
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if left in known and right in known:
                merges.append((left, right))
    return merges


@cache
def _combining_marks() -> str:
    """A class of the characters Python's unicodedata.combining() calls combining."""
    from .build_wordpiece import char_class

    return char_class([cp for cp in range(0x110000) if unicodedata.combining(chr(cp))])


def _normalizer(model: SentencePieceModel, rules: str, family: str, lowercase: bool):
    from tokenizers import Regex, normalizers

    steps = []
    if rules == "google-research-albert":
        steps += [
            normalizers.Replace(Regex(PY_WHITESPACE), " "),
            normalizers.Replace("``", '"'),
            normalizers.Replace("''", '"'),
            normalizers.NFKD(),
            normalizers.Replace(Regex(_combining_marks()), ""),
        ]
        if "nfkc" in model.normalizer:  # SentencePiece composes what NFKD split (Hangul, …),
            steps.append(normalizers.NFC())  # which its character map alone does not
        if lowercase:
            steps += [final_sigma(), normalizers.Lowercase()]
    elif rules == "hf" and family == "albert-spm":  # transformers' AlbertConverter
        steps += [normalizers.Replace("``", '"'), normalizers.Replace("''", '"')]
        steps += [normalizers.NFKD(), normalizers.StripAccents()]
        if lowercase:
            steps.append(normalizers.Lowercase())
    if model.precompiled_charsmap:
        steps.append(normalizers.Precompiled(model.precompiled_charsmap))
    if rules == "hf" and family != "albert-spm":  # transformers' SpmConverter
        steps += [normalizers.Strip(left=False, right=True)]
        steps += [normalizers.Replace(Regex(" {2,}"), SPACE_MARK)]
    elif rules == "hf":
        steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    elif model.remove_extra_whitespaces:
        steps += [
            normalizers.Replace(Regex("^ +| +$"), ""),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    return normalizers.Sequence(steps)


def sentencepiece(
    model: SentencePieceModel, numbered: Numbered, rules: str, family: str, lowercase: bool
):
    """A tokenizer reproducing `model` under `rules` ("sentencepiece", "google-research-albert",
    or "hf": transformers' conversion for `family`), with ids from `numbered`."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    if model.model_type == UNIGRAM:
        core = models.Unigram(numbered.vocab, numbered.unk_id, model.byte_fallback)
    elif model.model_type == BPE:
        ids = {}
        for i, (token, _) in enumerate(numbered.vocab):
            ids.setdefault(token, i)
        core = models.BPE(
            ids,
            _bpe_merges(numbered.vocab),
            unk_token=numbered.vocab[numbered.unk_id][0],
            fuse_unk=True,
            byte_fallback=model.byte_fallback,
        )
    else:
        raise ValueError(f"SentencePiece {model.kind} models are not supported")
    tokenizer = Tokenizer(core)
    tokenizer.normalizer = _normalizer(model, rules, family, lowercase)
    # SentencePiece adds one `▁` to the whole text; "always" adds one to each stretch between
    # special tokens, the same on text without them ("first" misses a text whose leading
    # spaces the normalizer removed: it looks at offsets in the original text).
    prepend = "always" if model.add_dummy_prefix else "never"
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement=SPACE_MARK, prepend_scheme=prepend, split=model.split_by_whitespace
    )
    steps = [decoders.ByteFallback(), decoders.Fuse()] if model.byte_fallback else []
    tokenizer.decoder = decoders.Sequence(
        [*steps, decoders.Metaspace(replacement=SPACE_MARK, prepend_scheme=prepend)]
    )
    added = [AddedToken(t, normalized=False, special=True) for t in numbered.specials]
    added += [AddedToken(t, normalized=False, special=False) for t in numbered.user_defined]
    tokenizer.add_tokens(sorted(added, key=lambda t: tokenizer.token_to_id(t.content) or 0))
    return tokenizer
