"""Tokenizer parity: the written HF tokenizer must give the source tokenizer's ids, row by row.

A tokenizer that splits text differently ruins every prediction as surely as a dropped weight,
so a mismatch fails the conversion like a weight mismatch does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .corpus import PAIRS, SINGLES
from .references import Encoder

SHOWN_IDS = 40  # ids shown around the first difference


@dataclass
class TokenizerParity:
    reference: str  # the source-side tokenizer, described
    candidate: str  # the written tokenizer, described
    rows: int
    equal: int
    first_difference: dict[str, Any] | None = None
    evidence: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.rows > 0 and self.equal == self.rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reference": self.reference,
            "candidate": self.candidate,
            "rows_compared": self.rows,
            "rows_equal": self.equal,
            "first_difference": self.first_difference,
            "evidence": self.evidence,
        }

    def markdown_lines(self) -> list[str]:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [
            f"## Tokenizer parity: {verdict}",
            "",
            f"- source tokenizer: {self.reference}",
            f"- converted tokenizer: {self.candidate}",
            f"- rows compared: {self.rows}, rows with identical ids: {self.equal}",
            *(f"- {e}" for e in self.evidence),
        ]
        if self.first_difference is not None:
            d = self.first_difference
            lines += [
                f"- first differing row #{d['row']}: `{d['text']!r}`",
                f"  - source ids: `{d['reference_ids']}`",
                f"  - converted ids: `{d['converted_ids']}`",
            ]
        return lines


def corpus_rows(texts: tuple[str, ...] = ()) -> list[tuple[str, str | None]]:
    """The built-in corpus (single segments, then pairs) and the user's own texts."""
    return [(t, None) for t in SINGLES] + list(PAIRS) + [(t, None) for t in texts]


def _shown(ids: list[int], at: int) -> list[int]:
    start = max(0, at - SHOWN_IDS // 2)
    return ids[start : start + SHOWN_IDS]


def compare(
    reference: Encoder,
    candidate: Encoder,
    rows: list[tuple[str, str | None]],
    reference_name: str,
    candidate_name: str,
    evidence: list[str],
) -> TokenizerParity:
    equal, first = 0, None
    for i, (text, pair) in enumerate(rows):
        expected, got = reference(text, pair), candidate(text, pair)
        if expected == got:
            equal += 1
            continue
        if first is None:
            at = next(
                (k for k, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b),
                min(len(expected), len(got)),
            )
            first = {
                "row": i,
                "text": text if pair is None else f"{text} ||| {pair}",
                "first_differing_position": at,
                "reference_ids": _shown(expected, at),
                "converted_ids": _shown(got, at),
            }
    return TokenizerParity(reference_name, candidate_name, len(rows), equal, first, evidence)
