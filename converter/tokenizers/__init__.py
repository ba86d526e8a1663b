"""Tokenizer conversion and parity: the output gets standard HF tokenizer files, proven to give
the source tokenizer's ids on a built-in multilingual corpus.

`write_tokenizer` (no TensorFlow, no torch) finds and writes the files during conversion, faithful
to the source's own rules by default; `check_tokenizer` (part of verification) rebuilds the
source's tokenizer by its own rules and compares.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ParityError
from .hf_files import Deviation, Written, expected_deviation, write_hf_tokenizer
from .parity import TokenizerParity, compare, corpus_rows
from .references import hf_ids, load_hf, reference_ids
from .rules import DEFAULT_STYLE, RULES, STYLES
from .sources import TokenizerPlan, find_tokenizer

TOKENIZER_CONFIGS = ("tokenizer.json", "tokenizer_config.json")
REPORT_FILE = "conversion_report.json"
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
    written: Written | None = None

    @property
    def deviation(self) -> Deviation | None:
        return self.written.deviation if self.written else None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "how": CONVERSIONS[self.plan.kind],
            "from": self.plan.origin,
            "family": self.plan.family or None,
            "rules": RULES.get(self.plan.rules) if self.plan.rules else None,
            "settings": self.plan.options,
            "evidence": self.plan.evidence + (self.written.evidence if self.written else []),
            "files": sorted(self.files),
        }
        if self.written is not None:
            out["style"] = self.written.style
            out["class"] = self.written.tokenizer_class
            out["deviation"] = self.deviation.to_dict() if self.deviation else None
        return out

    def notes(self) -> list[str]:
        if self.plan.kind == "none":
            return [
                f"no tokenizer found at {self.plan.origin}; pass --tokenizer PATH (a keras-hub "
                "preset or assets dir, a .keras file, an HF tokenizer dir, a vocab.txt, a "
                "SentencePiece model or a fairseq/fastBPE release)"
            ]
        settings = ", ".join(f"{k}={v}" for k, v in self.plan.options.items())
        said = f" ({settings}; {'; '.join(self.plan.evidence)})" if settings else ""
        notes = [f"tokenizer {CONVERSIONS[self.plan.kind]} from {self.plan.origin}{said}"]
        if self.written is not None:
            notes[0] += f", as {self.written.tokenizer_class} ({self.written.style})"
            notes += self.written.evidence
            if self.deviation is not None:
                notes.append(self.deviation.sentence())
        return notes

    def note(self) -> str:
        return "; ".join(self.notes())


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
    source,
    directory: Path,
    where: Path | None = None,
    model_max_length: int = 512,
    style: str = DEFAULT_STYLE,
    texts: tuple[str, ...] = (),
) -> TokenizerOutcome:
    plan = source_tokenizer(source, where)
    outcome = TokenizerOutcome(plan, model_max_length=model_max_length)
    if plan.kind == "copy":
        for f in plan.copy:
            shutil.copyfile(f, directory / f.name)
        outcome.files = [f.name for f in plan.copy]
    elif plan.kind == "convert":
        outcome.written = write_hf_tokenizer(plan, model_max_length, directory, style, texts)
        outcome.files = outcome.written.files
    return outcome


def _parity(
    plan: TokenizerPlan, directory: Path, texts: tuple[str, ...], deviation: Deviation | None
) -> TokenizerParity:
    rows = corpus_rows(texts)
    reference = reference_ids(plan, rows)
    written = load_hf(directory)
    expected = deviation.row_numbers if deviation is not None and deviation.chosen else None
    evidence = plan.evidence + reference.evidence
    if deviation is not None and deviation.rows:
        evidence = [*evidence, deviation.sentence()]
    return compare(
        reference.ids,
        hf_ids(written, rows),
        rows,
        reference.name,
        f"{type(written).__name__} from the output's tokenizer files",
        evidence,
        expected,
    )


def check_tokenizer(
    outcome: TokenizerOutcome, directory: Path, texts: tuple[str, ...] = ()
) -> TokenizerParity | None:
    """Compare the source tokenizer with the one written to `directory`; None without one."""
    if outcome.plan.kind == "none":
        return None
    return _parity(outcome.plan, directory, texts, outcome.deviation)


def _written_style(out: Path) -> str:
    """The style OUT's tokenizer was written in, from its conversion report."""
    try:
        report = json.loads((out / REPORT_FILE).read_text())
        return str(report["tokenizer"].get("style") or DEFAULT_STYLE)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return DEFAULT_STYLE


def verify_tokenizer(source, out: Path, texts: tuple[str, ...] = ()) -> TokenizerParity | None:
    """Tokenizer parity of an existing conversion: the source's tokenizer against OUT's."""
    plan = source_tokenizer(source)
    if plan.kind == "none" or not any((out / n).is_file() for n in TOKENIZER_CONFIGS):
        return None
    deviation = (
        expected_deviation(plan, _written_style(out), texts) if plan.kind == "convert" else None
    )
    return _parity(plan, out, texts, deviation)


def parity_failure(result: TokenizerParity, out: Path) -> ParityError | None:
    if result.passed:
        return None
    d = result.first_difference or {}
    if result.expected is not None:
        what = (
            f"tokenizer parity failed: {len(result.unexpected)} of {result.rows} corpus rows "
            f"tokenize differently beyond the chosen deviation"
        )
    else:
        what = (
            f"tokenizer parity failed: {result.rows - result.equal} of {result.rows} corpus rows "
            "tokenize differently"
        )
    if d:
        what += f", first row #{d.get('row')} ({str(d.get('text'))[:40]!r})"
    return ParityError(
        what,
        out,
        "the written tokenizer does not reproduce the source's; check the tokenizer files or "
        "pass the right one with --tokenizer PATH",
    )


__all__ = [
    "STYLES",
    "TokenizerOutcome",
    "TokenizerParity",
    "check_tokenizer",
    "write_tokenizer",
]


PARITY_MD = "parity_report.md"


def append_markdown(directory: Path, lines: list[str]) -> None:
    """Add the tokenizer section to the parity report (or start one when there is none)."""
    path = directory / PARITY_MD
    before = path.read_text().rstrip("\n") + "\n\n" if path.is_file() else ""
    path.write_text(before + "\n".join(lines) + "\n")
