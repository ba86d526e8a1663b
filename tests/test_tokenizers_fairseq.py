"""A fairseq release's own tokenizer beside its model.pt — `sentencepiece.bpe.model` + `dict.txt`
(XLM-R, CamemBERT) or `bpe.codes` + `dict.txt` (PhoBERT) — becomes Hugging Face files when
`doctor --fix` writes the repaired checkpoint, numbered by dict.txt as fairseq numbers the
embedding rows, and proven against fairseq's rules (the `sentencepiece` processor or fastBPE,
then the dictionary) before anything is published."""

from __future__ import annotations

from collections import Counter

from converter.tokenizers.corpus import PAIRS, SINGLES

from .conftest import nothing_written, read_json, run_cli
from .multilingual_text import SENTENCES
from .test_doctor_fairseq import _fairseq_state, _hf_model, _save_fairseq
from .test_tokenizers_phobert import VIETNAMESE, learn_codes
from .tokenizer_helpers import train_sentencepiece

ROWS = len(SINGLES) + len(PAIRS)
ENGLISH = [t for t in SENTENCES if t.isascii()] * 8


def _release(tmp_path, drop: int = 0):
    """A fairseq RoBERTa masked LM (99 embedding rows) with a SentencePiece model of at most
    94 pieces and its dict.txt (the pieces from id 3, in the model's order)."""
    import sentencepiece

    model = train_sentencepiece("unigram", vocab_size=97, text=ENGLISH)
    sp = sentencepiece.SentencePieceProcessor(model_proto=model)
    pieces = [sp.id_to_piece(i) for i in range(3, sp.get_piece_size())]
    counts = Counter(p for t in ENGLISH for p in sp.encode(t, out_type=str))
    kept = [p for p in pieces if p not in sorted(pieces, key=lambda p: -counts[p])[:drop]]
    state = _fairseq_state(_hf_model("RobertaForMaskedLM"))
    ckpt = _save_fairseq(tmp_path / "xlmr.base", state, with_cfg=True, dict_entries=len(kept))
    (ckpt.parent / "sentencepiece.bpe.model").write_bytes(model)
    (ckpt.parent / "dict.txt").write_text("".join(f"{p} 1\n" for p in kept), encoding="utf-8")
    return ckpt


def test_doctor_fix_converts_a_fairseq_sentencepiece_release_and_proves_it(tmp_path):
    from transformers import AutoTokenizer

    out = tmp_path / "fixed"
    code, stdout, err = run_cli(["doctor", str(_release(tmp_path)), "--fix", str(out)])
    assert code == 0, stdout + err
    assert read_json(out / "tokenizer_config.json")["tokenizer_class"] == "XLMRobertaTokenizer"
    assert (out / "sentencepiece.bpe.model").is_file() and not (out / "dict.txt").exists()
    tokenizer = read_json(out / "doctor_report.json")["tokenizer"]
    parity = tokenizer["parity"]
    assert parity["passed"] and parity["rows_equal"] == parity["rows_compared"] == ROWS
    assert "fairseq's dict.txt" in parity["reference"]
    assert "tokenizer.json" in read_json(out / "doctor_report.json")["output_files"]
    ids = AutoTokenizer.from_pretrained(str(out))("Hello world")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2 and max(ids) < 99


def test_a_dict_txt_that_lacks_pieces_fails_tokenizer_parity_and_writes_nothing(tmp_path):
    """fairseq numbers a piece dict.txt lacks as <unk>; no Hugging Face vocabulary can both keep
    the piece for the segmentation and give it <unk>'s id: refused, whole."""
    out = tmp_path / "fixed"
    code, stdout, err = run_cli(["doctor", str(_release(tmp_path, drop=5)), "--fix", str(out)])
    assert code == 1, stdout + err
    assert "tokenizer parity failed" in err.strip().splitlines()[-1]
    assert "pieces are not in dict.txt" in stdout + err
    assert nothing_written(out)


def test_doctor_fix_converts_a_phobert_fastbpe_release(tmp_path):
    text = VIETNAMESE * 20
    codes = learn_codes(text, 60)
    from converter.tokenizers.fastbpe import encode_word

    ranks = {(a, b): i for i, (a, b, _) in enumerate(codes)}
    pieces = Counter(p for line in text for w in line.split() for p in encode_word(w, ranks))
    state = _fairseq_state(_hf_model("RobertaForMaskedLM"))
    entries = min(94, len(pieces))
    ckpt = _save_fairseq(tmp_path / "phobert", state, with_cfg=False, dict_entries=entries)
    vocab = "".join(f"{p} {n}\n" for p, n in pieces.most_common(entries))
    (ckpt.parent / "dict.txt").write_text(vocab, encoding="utf-8")
    (ckpt.parent / "bpe.codes").write_text(
        "".join(f"{a} {b} {n}\n" for a, b, n in codes), encoding="utf-8"
    )
    out = tmp_path / "fixed"
    code, stdout, err = run_cli(["doctor", str(ckpt), "--fix", str(out)])
    assert code == 0, stdout + err
    assert read_json(out / "tokenizer_config.json")["tokenizer_class"] == "PhobertTokenizer"
    assert (out / "vocab.txt").read_text(encoding="utf-8") == vocab
    assert read_json(out / "doctor_report.json")["tokenizer"]["parity"]["passed"]
