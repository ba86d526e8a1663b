"""PhoBERT's fastBPE (`bpe.codes` + `vocab.txt`, or fairseq's `dict.txt`) → PhobertTokenizer
files, proven on Vietnamese text against a fastBPE written from its documented behaviour
(converter/tokenizers/fastbpe.py). The codes are learnt here, by the algorithm fastBPE's `learnbpe`
documents (merge the most frequent adjacent pair, words end in `</w>`), on word-segmented
Vietnamese; the vocabulary counts the pieces of the encoded text, as `getvocab` does."""

from __future__ import annotations

import re
import shutil
from collections import Counter

import pytest

from converter.tokenizers.corpus import PAIRS, SINGLES
from converter.tokenizers.fastbpe import END, FastBpe, encode_word, merge_pair
from converter.tokenizers.parity import corpus_rows
from converter.tokenizers.references import hf_ids, load_hf

from .conftest import read_json
from .multilingual_text import training_text
from .tokenizer_helpers import convert_tokenizer, hf5_ids

ROWS = len(SINGLES) + len(PAIRS)
VIETNAMESE = [
    "Tôi là sinh_viên trường đại_học Bách_khoa Hà_Nội .",
    "Hà_Nội là thủ_đô của Việt_Nam , thành_phố có nhiều hồ và cây xanh .",
    "Chúng_tôi đang nghiên_cứu về xử_lý ngôn_ngữ tự_nhiên cho tiếng Việt .",
    "Ông ấy đọc sách mỗi ngày và viết thư cho bạn_bè ở Sài_Gòn .",
]


def learn_codes(text: list[str], merges: int) -> list[tuple[str, str, int]]:
    """fastBPE's learnbpe: word counts, characters with `</w>` on the last, the most frequent
    adjacent pair merged (ties: the smaller pair), `merges` times."""
    words = Counter(w for line in text for w in line.split())
    split = {w: (*w[:-1], w[-1] + END) for w in words}
    codes = []
    for _ in range(merges):
        pairs: Counter = Counter()
        for word, symbols in split.items():
            for pair in zip(symbols, symbols[1:], strict=False):
                pairs[pair] += words[word]
        if not pairs:
            break
        best, count = min(pairs.items(), key=lambda pc: (-pc[1], pc[0]))
        codes.append((*best, count))
        for word, symbols in split.items():
            split[word] = tuple(merge_pair(symbols, best))
    return codes


@pytest.fixture(scope="module")
def phobert(tmp_path_factory):
    root = tmp_path_factory.mktemp("phobert")
    text = VIETNAMESE * 20 + training_text(2)
    codes = learn_codes(text, 400)
    ranks = {(a, b): i for i, (a, b, _) in enumerate(codes)}
    pieces = Counter(p for line in text for w in line.split() for p in encode_word(w, ranks))
    codes_text = "".join(f"{a} {b} {n}\n" for a, b, n in codes)
    vocab_text = "".join(f"{p} {n}\n" for p, n in pieces.most_common())
    sources = {}
    for name, vocab_name in (("hf", "vocab.txt"), ("fairseq", "dict.txt")):
        sources[name] = root / name
        sources[name].mkdir()
        (sources[name] / "bpe.codes").write_text(codes_text, encoding="utf-8")
        (sources[name] / vocab_name).write_text(vocab_text, encoding="utf-8")
    converted = {
        name: (root / f"out-{name}", *convert_tokenizer(src, root / f"out-{name}", "roberta"))
        for name, src in sources.items()
    }
    return {"sources": sources, "converted": converted, "codes": codes_text, "vocab": vocab_text}


NEWLINE_ROWS = [  # a newline right after a word: PhobertTokenizer keeps it on the word
    i for i, (text, pair) in enumerate(corpus_rows()) if re.search(r"\S\n", text + (pair or ""))
]


def test_phobert_files_give_fastbpes_ids_but_where_phobert_keeps_a_newline(phobert):
    """PhobertTokenizer (Python, the one Hugging Face class) keeps a newline on the word before
    it; fastBPE splits on every whitespace. Those rows are a deviation the report names; every
    other row gives fastBPE's ids, Vietnamese first."""
    for _name, (out, outcome, parity) in phobert["converted"].items():
        assert sorted(p.name for p in out.iterdir() if p.suffix in (".txt", ".codes")) == [
            "bpe.codes",
            "vocab.txt",
        ]
        assert read_json(out / "tokenizer_config.json")["tokenizer_class"] == "PhobertTokenizer"
        assert "PhobertTokenizer" in parity.candidate and "fastBPE" in parity.reference
        deviation = outcome.deviation
        assert deviation.chosen and "Python code" in deviation.why
        assert deviation.row_numbers == NEWLINE_ROWS
        assert parity.passed and parity.equal == ROWS - len(NEWLINE_ROWS)


def test_vietnamese_text_through_both_implementations(phobert):
    out = phobert["converted"]["hf"][0]
    reference = FastBpe.from_files(phobert["codes"], phobert["vocab"], "test")
    rows = [(t, None) for t in VIETNAMESE] + [(VIETNAMESE[0], VIETNAMESE[1])]
    written = hf_ids(load_hf(out), rows)
    assert written == [reference.encode(t, p) for t, p in rows]
    assert all(3 not in ids for ids in written)  # every Vietnamese piece is in the vocabulary


def test_transformers_5_loads_the_phobert_files_with_the_same_ids(phobert):
    outs = [out for out, *_ in phobert["converted"].values()]
    v5 = hf5_ids(outs)
    for out in outs:
        name, ids = v5[str(out)]
        assert name == "PhobertTokenizer"
        assert ids == hf_ids(load_hf(out), corpus_rows())


def test_a_vocabulary_one_line_off_fails_at_the_first_row(phobert, tmp_path):
    from converter.tokenizers import check_tokenizer

    out, outcome, _ = phobert["converted"]["hf"]
    wrong = shutil.copytree(out, tmp_path / "wrong")
    (wrong / "vocab.txt").write_text("extra 1\n" + phobert["vocab"], encoding="utf-8")
    result = check_tokenizer(outcome, wrong)
    assert not result.passed and result.first_difference["row"] == 0
