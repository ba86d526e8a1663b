"""A reference WordPiece tokenizer with google-research/bert's rules, written for parity checks.

TF1 checkpoints carry no tokenizer object, only `vocab.txt` and a casing rule, so the reference
the written HF tokenizer is compared with is this: clean the text, put spaces around CJK
ideographs, split on whitespace, optionally lowercase and drop accents, split off punctuation,
then greedy longest-match-first word pieces (`##` continuation, `[UNK]` for a word with no
segmentation or longer than 200 characters: tokenization.py's WordpieceTokenizer default, where
Hugging Face's BertTokenizer stops at 100). Independent of transformers on purpose.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

MAX_WORD_CHARS = 200
CONTINUATION = "##"
CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def read_vocab(path: Path) -> dict[str, int]:
    """vocab.txt: one token a line; the id is the line number."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return {token.rstrip("\n"): i for i, token in enumerate(lines)}


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch) in ("Cc", "Cf")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    ascii_punct = 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126
    return ascii_punct or unicodedata.category(ch).startswith("P")


def _clean(text: str) -> str:
    out = []
    for ch in text:
        if ord(ch) in (0, 0xFFFD) or _is_control(ch):
            continue
        if _is_cjk(ord(ch)):
            out.append(f" {ch} ")
        else:
            out.append(" " if _is_whitespace(ch) else ch)
    return "".join(out)


def _strip_accents(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")


def _split_punctuation(word: str) -> list[str]:
    pieces: list[str] = []
    current = ""
    for ch in word:
        if _is_punctuation(ch):
            pieces += [current, ch] if current else [ch]
            current = ""
        else:
            current += ch
    return pieces + [current] if current else pieces


@dataclass(frozen=True)
class WordPiece:
    vocab: dict[str, int]
    lowercase: bool
    unk: str = "[UNK]"
    cls: str = "[CLS]"
    sep: str = "[SEP]"

    def words(self, text: str) -> list[str]:
        words: list[str] = []
        for word in _clean(text).split():
            if self.lowercase:
                word = _strip_accents(word.lower())
            words += _split_punctuation(word)
        return words

    def pieces(self, word: str) -> list[str]:
        if len(word) > MAX_WORD_CHARS:
            return [self.unk]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                candidate = (CONTINUATION if start else "") + word[start:end]
                if candidate in self.vocab:
                    break
                end -= 1
            if end == start:
                return [self.unk]
            pieces.append(candidate)
            start = end
        return pieces

    def tokens(self, text: str) -> list[str]:
        return [p for w in self.words(text) for p in self.pieces(w)]

    def encode(self, text: str, pair: str | None = None) -> list[int]:
        """Ids with BERT's packing: [CLS] a [SEP] (b [SEP])."""
        tokens = [self.cls, *self.tokens(text), self.sep]
        if pair is not None:
            tokens += [*self.tokens(pair), self.sep]
        return [self.vocab[t] for t in tokens]
