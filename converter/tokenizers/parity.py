"""Tokenizer parity: the written HF tokenizer must give the source tokenizer's ids, row by row.

A tokenizer that splits text differently ruins every prediction as surely as a dropped weight,
so a mismatch fails the conversion like a weight mismatch does. The one exception is a chosen
deviation (`--tokenizer-style canonical`, or a family whose only Hugging Face tokenizer is not
faithful): then exactly the rows the deviation named may differ, and no other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .corpus import PAIRS, SINGLES

SHOWN_IDS = 40  # ids shown around the first difference

Rows = list[tuple[str, str | None]]


@dataclass
class TokenizerParity:
    reference: str  # the source-side tokenizer, described
    candidate: str  # the written tokenizer, described
    rows: int
    equal: int
    first_difference: dict[str, Any] | None = None
    evidence: list[str] = field(default_factory=list)
    differing: list[int] = field(default_factory=list)  # rows whose ids differ
    expected: list[int] | None = None  # rows a chosen deviation lets differ

    @property
    def unexpected(self) -> list[int]:
        return sorted(set(self.differing) - set(self.expected or ()))

    @property
    def passed(self) -> bool:
        if self.rows == 0:
            return False
        if self.expected is None:
            return self.equal == self.rows
        return set(self.differing) == set(self.expected)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "passed": self.passed,
            "reference": self.reference,
            "candidate": self.candidate,
            "rows_compared": self.rows,
            "rows_equal": self.equal,
            "first_difference": self.first_difference,
            "evidence": self.evidence,
        }
        if self.expected is not None:
            out["rows_differing_by_choice"] = sorted(self.expected)
        return out

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
        if self.expected is not None:
            lines.append(
                f"- rows differing by the chosen deviation: {len(self.expected)}"
                + (f" (#{', #'.join(map(str, sorted(self.expected)))})" if self.expected else "")
            )
        if self.first_difference is not None:
            d = self.first_difference
            lines += [
                f"- first {'unexpected ' if self.expected is not None else ''}differing row "
                f"#{d['row']}: `{d['text']!r}`",
                f"  - source ids: `{d['reference_ids']}`",
                f"  - converted ids: `{d['converted_ids']}`",
            ]
        return lines


def corpus_rows(texts: tuple[str, ...] = ()) -> Rows:
    """The built-in corpus (single segments, then pairs) and the user's own texts."""
    return [(t, None) for t in SINGLES] + list(PAIRS) + [(t, None) for t in texts]


def _shown(ids: list[int], at: int) -> list[int]:
    start = max(0, at - SHOWN_IDS // 2)
    return ids[start : start + SHOWN_IDS]


def compare(
    reference: list[list[int]],
    candidate: list[list[int]],
    rows: Rows,
    reference_name: str,
    candidate_name: str,
    evidence: list[str],
    expected: list[int] | None = None,
) -> TokenizerParity:
    """Row by row; the first difference shown is the first one `expected` does not allow."""
    differing = [i for i, (a, b) in enumerate(zip(reference, candidate, strict=True)) if a != b]
    first = None
    shown = next((i for i in differing if i not in set(expected or ())), None)
    if shown is not None:
        expected_ids, got = reference[shown], candidate[shown]
        at = next(
            (k for k, (a, b) in enumerate(zip(expected_ids, got, strict=False)) if a != b),
            min(len(expected_ids), len(got)),
        )
        text, pair = rows[shown]
        first = {
            "row": shown,
            "text": text if pair is None else f"{text} ||| {pair}",
            "first_differing_position": at,
            "reference_ids": _shown(expected_ids, at),
            "converted_ids": _shown(got, at),
        }
    return TokenizerParity(
        reference_name,
        candidate_name,
        len(rows),
        len(rows) - len(differing),
        first,
        evidence,
        differing,
        expected,
    )
