"""Shared by the tokenizer tests: sources made by the real producers (the `tokenizers` and
`sentencepiece` trainers, keras-hub's own save_to_preset), written and checked through
tf2pt's tokenizer package, and AutoTokenizer ids from transformers 4.57 and 5."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from converter.tokenizers import TokenizerOutcome, check_tokenizer, write_tokenizer
from converter.tokenizers.parity import TokenizerParity, corpus_rows

from .multilingual_text import training_text
from .test_transformers5 import HF5_PYTHON

IDS_SCRIPT = """
import json, sys
from transformers import AutoTokenizer
rows = json.loads(sys.stdin.read())
out = {}
for d in sys.argv[1:]:
    t = AutoTokenizer.from_pretrained(d)
    out[d] = [type(t).__name__, [list(t(a, b)["input_ids"]) for a, b in rows]]
print(json.dumps(out))
"""


def fake_source(directory: Path) -> SimpleNamespace:
    """What write_tokenizer reads of a source: where it is, and no tensors."""
    return SimpleNamespace(
        path=directory, weight_files=[], tensor_map=lambda: {}, tokenizer_files=[]
    )


def out_dir(path: Path, model_type: str) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": model_type}))
    return path


def convert_tokenizer(
    src: Path, out: Path, model_type: str, style: str = "faithful", texts=()
) -> tuple[TokenizerOutcome, TokenizerParity]:
    outcome = write_tokenizer(fake_source(src), out_dir(out, model_type), style=style, texts=texts)
    return outcome, check_tokenizer(outcome, out, texts)


def train_byte_level_bpe(directory: Path, vocab_size: int = 700) -> Path:
    """A real byte-level BPE (vocab.json + merges.txt) trained by the tokenizers library on text
    with whitespace runs, so that it holds merged-space tokens (`ĠĠ`, `ĠĠĠ`) as RoBERTa's does."""
    from tokenizers import ByteLevelBPETokenizer

    runs = ["a  b   c    d     e", "x\t\ty  \n\n  z      w"] * 30
    bpe = ByteLevelBPETokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe.train_from_iterator(training_text() + runs, vocab_size=vocab_size, special_tokens=specials)
    directory.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(directory))
    return directory


def train_sentencepiece(
    kind: str, vocab_size: int = 400, lowercase=False, text=None, **options
) -> bytes:
    """A real SentencePiece model (unigram or BPE) trained here on multilingual text."""
    import sentencepiece

    model = io.BytesIO()
    text = training_text() if text is None else text
    text = [t.lower() for t in text] if lowercase else text
    settings = {"character_coverage": 0.995, **options}  # rare characters stay unknown
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(text),
        model_writer=model,
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        model_type=kind,
        minloglevel=2,
        **settings,
    )
    return model.getvalue()


ALBERT_PIECES = dict(  # ALBERT's special pieces and ids, as in its 30k-clean.model
    pad_id=0,
    unk_id=1,
    bos_id=2,
    eos_id=3,
    pad_piece="<pad>",
    unk_piece="<unk>",
    bos_piece="[CLS]",
    eos_piece="[SEP]",
    user_defined_symbols="[MASK]",
)


def transformers_ids(
    directories: list[Path], rows=None, python: Path | str = sys.executable
) -> dict[str, tuple[str, list[list[int]]]]:
    """{dir: (class name, ids per row)} from AutoTokenizer.from_pretrained(dir) run by `python`
    (this venv's transformers 4.57, or HF5_PYTHON's transformers 5), in one process."""
    rows = corpus_rows() if rows is None else rows
    result = subprocess.run(
        [str(python), "-c", IDS_SCRIPT, *map(str, directories)],
        input=json.dumps(rows),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {d: tuple(v) for d, v in json.loads(result.stdout.strip().splitlines()[-1]).items()}


def hf5_ids(directories: list[Path], rows=None):
    return transformers_ids(directories, rows, HF5_PYTHON)
