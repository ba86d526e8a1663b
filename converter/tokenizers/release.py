"""A release's own tokenizer files beside a PyTorch checkpoint (fairseq's SentencePiece model or
fastBPE codes with its dict.txt), converted for `doctor --fix` and proven like `convert`'s: by
the release's own rules against the written files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .families import load_families
from .sources import find_tokenizer

DOCTOR_RULES = ("fairseq-sentencepiece", "fastbpe")  # the releases PyTorch checkpoints come in


@dataclass
class ReleaseTokenizer:
    files: list[str] = field(default_factory=list)  # written into the output
    consumed: set[str] = field(default_factory=set)  # side files it replaces
    report: dict[str, Any] | None = None  # for doctor_report.json
    failure: Any = None  # the ParityError to raise, if parity failed
    notes: list[str] = field(default_factory=list)


def release_tokenizer(
    side_files: list[Path], out: Path, config: dict[str, Any], published_as: Path
) -> ReleaseTokenizer:
    """Convert the release tokenizer among `side_files` (all in one directory) into `out` (to be
    published as `published_as`), then check it; an empty result when there is none (the files
    are then copied as they are)."""
    from . import TokenizerOutcome, check_tokenizer, parity_failure
    from .hf_files import write_hf_tokenizer

    names = {f.name for f in side_files}
    releases = load_families().releases
    release = next((r for r in releases if set(r.files) <= names and r.rules in DOCTOR_RULES), None)
    if release is None:
        return ReleaseTokenizer()
    directory = next(f.parent for f in side_files if f.name in release.files)
    plan = find_tokenizer(directory, {})
    if plan.kind != "convert" or plan.rules != release.rules:
        return ReleaseTokenizer()
    rows = config.get("vocab_size")
    plan.vocab_size = rows if isinstance(rows, int) else None
    positions = int(config.get("max_position_embeddings") or 514)
    max_length = positions - int(config.get("pad_token_id", 1)) - 1  # RoBERTa's offset
    written = write_hf_tokenizer(plan, max_length, out)
    outcome = TokenizerOutcome(plan, written.files, max_length, written)
    notes = outcome.notes()
    try:
        parity = check_tokenizer(outcome, out)
    except ImportError as exc:  # the reference needs sentencepiece
        parity = None
        notes.append(f"tokenizer parity not run: {exc.name} is not installed")
    report = {**outcome.to_dict(), "parity": parity.to_dict() if parity else None}
    failure = parity_failure(parity, published_as) if parity is not None else None
    return ReleaseTokenizer(written.files, set(release.files), report, failure, notes)
