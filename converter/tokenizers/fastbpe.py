"""fastBPE (PhoBERT's subword encoder), written from its documented behaviour, for parity.

`bpe.codes` holds one merge a line (`left right count`), earlier lines first. A word is split
into characters, the last one marked `</w>`; the adjacent pair with the earliest code is merged
everywhere in the word, left to right, until no pair has a code. Pieces but the last carry `@@`.
fairseq splits the text on whitespace, encodes each word, and numbers the pieces with its
dictionary (dict.txt; vocab.txt in Hugging Face's layout): <s>, <pad>, </s>, <unk>, then the
file's entries in order; a piece it lacks is <unk>.

transformers' PhobertTokenizer (Python only, the one Hugging Face class) splits words as
`\\S+\n?`: a newline stays on the word before it. `hf_words=True` does that, to say where the
written tokenizer deviates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InputError

END = "</w>"
JOINER = "@@"
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")


def read_codes(text: str, where: str) -> dict[tuple[str, str], int]:
    ranks: dict[tuple[str, str], int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split(" ")
        if len(fields) < 2 or not fields[0] or not fields[1]:
            raise InputError(f"line {number} is not 'left right count'", where)
        ranks.setdefault((fields[0], fields[1]), len(ranks))
    return ranks


def read_dictionary(text: str, where: str) -> list[str]:
    """fairseq's numbering: the four specials, then each `token count` line's token."""
    tokens = list(SPECIALS)
    for number, line in enumerate(text.splitlines(), 1):
        token, _, count = line.rstrip("\n").rpartition(" ")
        if not token or not count:
            raise InputError(f"line {number} is not 'token count'", where)
        tokens.append(token)
    return tokens


def merge_pair(symbols: list[str] | tuple[str, ...], pair: tuple[str, str]) -> list[str]:
    """`symbols` with every non-overlapping occurrence of `pair`, left to right, joined."""
    merged, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            merged.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            merged.append(symbols[i])
            i += 1
    return merged


def encode_word(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    symbols = [*word[:-1], word[-1] + END]
    while len(symbols) > 1:
        pairs = [(ranks[p], p) for p in zip(symbols, symbols[1:], strict=False) if p in ranks]
        if not pairs:
            break
        symbols = merge_pair(symbols, min(pairs)[1])
    pieces = [s + JOINER for s in symbols[:-1]]
    return [*pieces, symbols[-1].removesuffix(END)]


@dataclass(frozen=True)
class FastBpe:
    ranks: dict[tuple[str, str], int]
    ids: dict[str, int]  # fairseq's: a token listed twice keeps its last id

    @classmethod
    def from_files(cls, codes: str, dictionary: str, where: str, hf_words: bool = False):
        tokens = read_dictionary(dictionary, where)
        return cls(read_codes(codes, where), {t: i for i, t in enumerate(tokens)}, hf_words)

    hf_words: bool = False

    def tokens(self, text: str) -> list[str]:
        words = re.findall(r"\S+\n?", text) if self.hf_words else text.split()
        return [p for word in words for p in encode_word(word, self.ranks)]

    def encode(self, text: str, pair: str | None = None) -> list[int]:
        """Ids as RoBERTa packs them: <s> a </s> (</s> b </s>)."""
        # fairseq's hub looks "<s>" and "</s>" up by name; an unknown piece is the fixed <unk>
        bos, eos, unk = self.ids["<s>"], self.ids["</s>"], SPECIALS.index("<unk>")
        ids = [bos, *(self.ids.get(t, unk) for t in self.tokens(text)), eos]
        if pair is not None:
            ids += [eos, *(self.ids.get(t, unk) for t in self.tokens(pair)), eos]
        return ids
