"""The tokenization rules a source follows, named in mappings/tokenizers/families.yaml: what
each means, for the reports. The pipelines reproducing them are in pipelines.py, the references
parity compares with in references.py."""

from __future__ import annotations

RULES = {
    "keras-hub-bpe": "keras-hub's BytePairTokenizer as fit/predict/evaluate and tf.data run it",
    "keras-hub-wordpiece": "keras-hub's WordPieceTokenizer",
    "sentencepiece": "SentencePiece's own processor, as keras-hub's SentencePieceTokenizer runs it",
    "google-research-bert": "google-research/bert's tokenization.py (FullTokenizer)",
    "google-research-albert": "google-research/albert's tokenization.py (FullTokenizer)",
    "fairseq-sentencepiece": "fairseq: SentencePiece pieces numbered by dict.txt",
    "fastbpe": "fairseq: fastBPE pieces numbered by the dictionary",
    "hf": "the source's own Hugging Face tokenizer files",
}
STYLES = ("faithful", "canonical")
DEFAULT_STYLE = "faithful"
