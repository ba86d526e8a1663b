"""Tokenizer conversion and parity: the output gets standard HF tokenizer files, proven to give
the source tokenizer's ids on a built-in multilingual corpus.

`write_tokenizer` (no TensorFlow, no torch) finds and writes the files during conversion;
`check_tokenizer` (part of verification) rebuilds the source tokenizer and compares.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ParityError
from .hf_files import write_hf_tokenizer
from .parity import TokenizerParity, compare, corpus_rows
from .references import hf_encoder, load_hf, reference_encoder
from .sources import TokenizerPlan, find_tokenizer

TOKENIZER_CONFIGS = ("tokenizer.json", "tokenizer_config.json")
CONVERSIONS = {
    "copy": "copied as is (Hugging Face files)",
    "convert": "converted to Hugging Face files",
    "none": "no tokenizer found",
}


@dataclass
class TokenizerOutcome:
    plan: TokenizerPlan
    files: list[str] = field(default_factory=list)
    model_max_length: int = 512

    def to_dict(self) -> dict[str, Any]:
        return {
            "how": CONVERSIONS[self.plan.kind],
            "from": self.plan.origin,
            "family": self.plan.family or None,
            "settings": self.plan.options,
            "evidence": self.plan.evidence,
            "files": sorted(self.files),
        }

    def note(self) -> str:
        if self.plan.kind == "none":
            return (
                f"no tokenizer found at {self.plan.origin}; pass --tokenizer PATH (a keras-hub "
                "preset or assets dir, a .keras file, an HF tokenizer dir or a vocab.txt)"
            )
        settings = ", ".join(f"{k}={v}" for k, v in self.plan.options.items())
        said = f" ({settings}; {'; '.join(self.plan.evidence)})" if settings else ""
        return f"tokenizer {CONVERSIONS[self.plan.kind]} from {self.plan.origin}{said}"


def default_location(source) -> Path:
    """Where a source keeps its tokenizer: the preset dir, the .keras file, or the directory
    beside the weights."""
    return source.path if source.path.exists() else source.weight_files[0].parent


def source_tokenizer(source, where: Path | None = None) -> TokenizerPlan:
    """The source's tokenizer: at `where` when given, else at its default location, else where
    the reader found tokenizer files (a SavedModel's `assets/vocab.txt`)."""
    tensors = source.tensor_map()
    plan = find_tokenizer(where or default_location(source), tensors)
    if plan.kind == "none" and where is None and source.tokenizer_files:
        plan = find_tokenizer(source.tokenizer_files[0].parent, tensors)
    return plan


def write_tokenizer(
    source, directory: Path, where: Path | None = None, model_max_length: int = 512
) -> TokenizerOutcome:
    plan = source_tokenizer(source, where)
    outcome = TokenizerOutcome(plan, model_max_length=model_max_length)
    if plan.kind == "copy":
        for f in plan.copy:
            shutil.copyfile(f, directory / f.name)
        outcome.files = [f.name for f in plan.copy]
    elif plan.kind == "convert":
        outcome.files = write_hf_tokenizer(
            plan.family, plan.files, plan.options, model_max_length, directory
        )
    return outcome


def check_tokenizer(
    outcome: TokenizerOutcome, directory: Path, texts: tuple[str, ...] = ()
) -> TokenizerParity | None:
    """Compare the source tokenizer with the one written to `directory`; None without one."""
    if outcome.plan.kind == "none":
        return None
    reference, reference_name = reference_encoder(outcome.plan, outcome.model_max_length)
    written = load_hf(directory)
    return compare(
        reference,
        hf_encoder(written),
        corpus_rows(texts),
        reference_name,
        f"{type(written).__name__} from the output's tokenizer files",
        outcome.plan.evidence,
    )


def verify_tokenizer(source, out: Path, texts: tuple[str, ...] = ()) -> TokenizerParity | None:
    """Tokenizer parity of an existing conversion: the source's tokenizer against OUT's."""
    plan = source_tokenizer(source)
    if plan.kind == "none" or not any((out / n).is_file() for n in TOKENIZER_CONFIGS):
        return None
    return check_tokenizer(TokenizerOutcome(plan), out, texts)


def parity_failure(result: TokenizerParity, out: Path) -> ParityError | None:
    if result.passed:
        return None
    d = result.first_difference or {}
    return ParityError(
        f"tokenizer parity failed: {result.rows - result.equal} of {result.rows} corpus rows "
        f"tokenize differently, first row #{d.get('row')} ({str(d.get('text'))[:40]!r})",
        out,
        "the written tokenizer does not reproduce the source's; check the tokenizer files or "
        "pass the right one with --tokenizer PATH",
    )


__all__ = ["TokenizerOutcome", "TokenizerParity", "check_tokenizer", "write_tokenizer"]


PARITY_MD = "parity_report.md"


def append_markdown(directory: Path, lines: list[str]) -> None:
    """Add the tokenizer section to the parity report (or start one when there is none)."""
    path = directory / PARITY_MD
    before = path.read_text().rstrip("\n") + "\n\n" if path.is_file() else ""
    path.write_text(before + "\n".join(lines) + "\n")
