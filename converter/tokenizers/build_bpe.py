"""Byte-level BPE tokenizers (RoBERTa, GPT-2) as `tokenizers` pipelines: GPT-2's canonical
split, or keras-hub's own.

keras-hub 0.32's BytePairTokenizer, on the path `fit`, `predict`, `evaluate` and every `tf.data`
pipeline take (its TensorFlow graph), splits words without GPT-2's `\\s+(?!\\S)` lookahead, which
RE2 lacks. It marks with `६` (U+096C) each space that starts a word, splits with its own regex
(RE2's `\\s` is ASCII whitespace only; four Unicode spaces are listed apart), splits the last
whitespace character (or mark) off each piece with a second regex, and drops the pieces that are
a lone mark. The written pipeline does the same, step for step: a normalizer inserts the marks
(and the mark the second keras-hub rule adds after a trailing whitespace run), two `Split`s
isolate the pieces, a third removes the marks, and `ByteLevel` without its own regex maps bytes.
Where keras-hub and GPT-2 differ: whitespace runs at the end of a text or before a tab, newline
or form feed, Unicode spaces other than those four, `\\v`, and a literal `६`.

keras-hub's eager (Python) path is different again: its split regex reaches `tokenizers` as a
plain string, which never matches, so it splits no words at all (`reference.py` says so when it
differs from the graph path).
"""

from __future__ import annotations

KERAS_MARK = "\u096c"  # keras-hub's word-start mark, DEVANAGARI DIGIT SIX
KERAS_SPACES = "\u00a0\u2009\u202f\u3000"  # spaces keras-hub lists beside RE2's \s
RE2_SPACE = r"\t\n\f\r "  # RE2's \s: ASCII whitespace without \v
KERAS_SPLIT = (  # keras-hub's SPLIT_PATTERN_1, in onig syntax
    r"'s|'t|'re|'ve|'m|'ll|'d"
    rf"|[{RE2_SPACE}{KERAS_SPACES}]+[\n\r\t\f{KERAS_MARK}{KERAS_SPACES}]"
    r"| ?\p{L}+| ?\p{N}+"
    rf"| ?[^{RE2_SPACE}\p{{L}}\p{{N}}{KERAS_SPACES}]+"
)
KERAS_LAST_SPACE = rf"[ \t\r\f\v{KERAS_MARK}{KERAS_SPACES}]\z"  # SPLIT_PATTERN_2 ($ is \z in RE2)
KERAS_WORD_START = rf" (?=[^{RE2_SPACE}{KERAS_SPACES}])"  # a space before a non-space
# keras-hub's second rule appends a mark to a text ending in one whitespace + its four spaces (it
# means a character class, but is written as a sequence, so nothing else matches it).
KERAS_TRAILING = KERAS_SPACES + r"\z"

SPLITS = ("gpt2", "keras-hub")


def _keras_hub_steps(add_prefix_space: bool):
    from tokenizers import Regex, normalizers, pre_tokenizers

    steps = [normalizers.Prepend(" ")] if add_prefix_space else []
    steps += [
        normalizers.Replace(Regex(c + KERAS_TRAILING), c + KERAS_SPACES + KERAS_MARK)
        for c in "\t\n\f\r "
    ]
    steps.append(normalizers.Replace(Regex(KERAS_WORD_START), KERAS_MARK + " "))
    pre = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(KERAS_SPLIT), behavior="isolated"),
            pre_tokenizers.Split(Regex(KERAS_LAST_SPACE), behavior="isolated"),
            pre_tokenizers.Split(Regex(rf"\A{KERAS_MARK}\z"), behavior="removed"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    return normalizers.Sequence(steps), pre


def read_merges(text: str) -> list[tuple[str, str]]:
    """merges.txt: one `left right` pair a line, after an optional `#version` header."""
    lines = [line for line in text.splitlines() if line and not line.startswith("#version")]
    return [tuple(line.split(" ", 1)) for line in lines]  # type: ignore[misc]


def byte_level_bpe(vocab: dict[str, int], merges: list[tuple[str, str]], split: str, prefix: bool):
    """A BPE tokenizer over bytes; `split` is "gpt2" (GPT-2's regex, what Hugging Face's
    RoBERTa/GPT-2 tokenizers do) or "keras-hub" (keras-hub's graph path, above); `prefix`:
    add a space in front of the text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tokenizer = Tokenizer(models.BPE(vocab, merges))
    if split == "keras-hub":
        tokenizer.normalizer, tokenizer.pre_tokenizer = _keras_hub_steps(prefix)
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer
