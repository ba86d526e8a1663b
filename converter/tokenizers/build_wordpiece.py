"""WordPiece tokenizers as `tokenizers` pipelines, by whose rules they split words.

- `hf`: Hugging Face's BertTokenizer (clean the text, space out CJK, lowercase and strip accents
  together, words of more than 100 characters become [UNK]).
- `google-research-bert`: BERT's own tokenization.py, the same but for 200 characters.
- `keras-hub`: keras-hub's WordPieceTokenizer. It splits on ASCII whitespace (RE2's `\\s`) and
  control/format characters, not on other Unicode spaces; it cleans nothing; it strips accents
  only when asked (lowercasing does not imply it); and it lowercases each word after splitting
  by NFKC_Casefold (`tf_text.case_fold_utf8`: NFKC, full case folding — `ß` → `ss`, `ς` → `σ` —
  and default-ignorable characters dropped). TensorFlow strings also end at a NUL character.
  The written pipeline folds before splitting: identical except for the few compatibility
  characters whose NFKC form holds punctuation (`…`, `⑴`, `ŀ`: keras-hub keeps them in one word,
  the pipeline splits them), and words longer than 100 UTF-8 bytes but not 100 characters
  (keras-hub's limit is in bytes). Characters whose NFKC form holds a space make their word
  [UNK] in keras-hub; the pipeline maps them to a private-use character no vocabulary holds.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from typing import Any

from .wordpiece import CJK_RANGES

RULES = ("hf", "google-research-bert", "keras-hub")
MAX_CHARS = {"hf": 100, "google-research-bert": 200, "keras-hub": 100}
ASCII_SPACE = "\t\n\f\r "  # RE2's \s
KERAS_SPLIT_ON = r"[\t\n\f\r ]|\p{Cc}|\p{Cf}"  # dropped
KERAS_PUNCTUATION = r"[!-/]|[:-@]|[\[-`]|[{-~]|\p{P}"  # kept as words
STAND_IN = "\ue000"  # for characters whose fold holds a space: no vocabulary has it
# Unicode Default_Ignorable_Code_Point, as keras-hub lists it (dropped by NFKC_Casefold).
DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


# Python's str.lower() (what google-research's tokenizers call) ends a word's capital sigma as ς:
# after a cased letter, not before one, case-ignorable characters between skipped. Lowercase in
# `tokenizers` maps Σ to σ alone; this Replace runs first. Cased and case-ignorable are
# approximated by their general categories (and the apostrophes, dots and colons of Unicode's
# MidLetter/MidNumLet), up to three case-ignorables behind.
CASED = r"[\p{Lu}\p{Ll}\p{Lt}]"
CASE_IGNORABLE = r"[\p{Mn}\p{Me}\p{Cf}\p{Lm}\p{Sk}'.:\x{b7}\x{2018}\x{2019}\x{2024}\x{2027}]"
FINAL_SIGMA = (
    "(?<="
    + "|".join(CASED + CASE_IGNORABLE * n for n in range(4))
    + ")"
    + r"\x{3a3}(?!"
    + CASE_IGNORABLE
    + "*"
    + CASED
    + ")"
)


def final_sigma():
    """A normalizer giving a word-final capital sigma Python's lowercase form in advance."""
    from tokenizers import Regex, normalizers

    return normalizers.Replace(Regex(FINAL_SIGMA), "\u03c2")


def _span(lo: int, hi: int) -> str:
    return f"\\x{{{lo:X}}}" if lo == hi else f"\\x{{{lo:X}}}-\\x{{{hi:X}}}"


def char_class(codepoints: list[int]) -> str:
    """A regex character class of these code points, as ranges."""
    spans: list[list[int]] = []
    for cp in sorted(codepoints):
        if spans and cp == spans[-1][1] + 1:
            spans[-1][1] = cp
        else:
            spans.append([cp, cp])
    return "[" + "".join(_span(lo, hi) for lo, hi in spans) + "]"


CJK_CLASS = char_class([cp for lo, hi in CJK_RANGES for cp in range(lo, hi + 1)])


def splits_words(ch: str) -> bool:
    """Whether keras-hub ends a word at `ch` (a delimiter, punctuation or a CJK character)."""
    cp = ord(ch)
    category = unicodedata.category(ch)
    return (
        ch in ASCII_SPACE
        or category in ("Cc", "Cf")
        or category.startswith("P")
        or 33 <= cp <= 47
        or 58 <= cp <= 64
        or 91 <= cp <= 96
        or 123 <= cp <= 126
        or any(lo <= cp <= hi for lo, hi in CJK_RANGES)
    )


def _fold(ch: str) -> str:
    """NFKC_Casefold without the default-ignorable removal."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", ch).casefold())


@cache
def _folding_tables() -> tuple[dict[str, str], list[int], list[int]]:
    """(characters Lowercase leaves that full case folding changes → their folding; characters
    inside a word whose fold holds whitespace or a control; default-ignorables inside words)."""
    every = (chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF)
    changed = [c for c in every if c.casefold() != c or not unicodedata.is_normalized("NFKC", c)]
    extras = {
        c: c.casefold()
        for c in changed
        if c.lower() == c and c.casefold() != c and unicodedata.is_normalized("NFKC", c)
    }
    spaced = [
        ord(c)
        for c in changed
        if not splits_words(c)
        and any(x in ASCII_SPACE or unicodedata.category(x) in ("Cc", "Cf") for x in _fold(c))
    ]
    ignorable = [
        cp for lo, hi in DEFAULT_IGNORABLE for cp in range(lo, hi + 1) if not splits_words(chr(cp))
    ]
    return extras, spaced, ignorable


def _keras_hub_normalizer(options: dict[str, Any]):
    from tokenizers import Regex, normalizers

    steps = [normalizers.Replace(Regex(r"\x{0}[\s\S]*"), "")]  # a TF string ends at NUL
    if options.get("strip_accents"):  # \p{Mn} only (StripAccents drops spacing marks too)
        steps += [normalizers.NFD(), normalizers.Replace(Regex(r"\p{Mn}"), "")]
    if options.get("do_lower_case"):
        extras, spaced, ignorable = _folding_tables()
        steps.append(normalizers.Replace(Regex(char_class(spaced)), STAND_IN))
        steps += [normalizers.NFKC(), normalizers.Lowercase()]
        steps += [normalizers.Replace(k, v) for k, v in sorted(extras.items())]
        steps.append(normalizers.NFKC())
        steps.append(normalizers.Replace(Regex(char_class(ignorable)), ""))
    return normalizers.Sequence(steps)


def _keras_hub_pre_tokenizer(options: dict[str, Any]):
    from tokenizers import Regex, pre_tokenizers

    kept = KERAS_PUNCTUATION + ("|" + CJK_CLASS if options.get("tokenize_chinese_chars") else "")
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(KERAS_SPLIT_ON), behavior="removed"),
            pre_tokenizers.Split(Regex(kept), behavior="isolated"),
        ]
    )


def read_vocab(text: str) -> dict[str, int]:
    """vocab.txt: a token a line, its id the line number (a repeated token keeps the last)."""
    return {line.rstrip(): i for i, line in enumerate(text.splitlines())}


def wordpiece(vocab: dict[str, int], rules: str, options: dict[str, Any]):
    """A WordPiece tokenizer splitting words by `rules` (see the module docstring); `options`
    are tokenizer_config.json's do_lower_case, strip_accents, tokenize_chinese_chars."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    model = models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=MAX_CHARS[rules])
    tokenizer = Tokenizer(model)
    if rules == "keras-hub":
        tokenizer.normalizer = _keras_hub_normalizer(options)
        tokenizer.pre_tokenizer = _keras_hub_pre_tokenizer(options)
    else:
        bert = normalizers.BertNormalizer(
            clean_text=True,
            handle_chinese_chars=bool(options.get("tokenize_chinese_chars", True)),
            strip_accents=options.get("strip_accents"),
            lowercase=bool(options.get("do_lower_case")),
        )
        python_lower = rules == "google-research-bert" and options.get("do_lower_case")
        tokenizer.normalizer = normalizers.Sequence([final_sigma(), bert]) if python_lower else bert
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer
