"""One vocabulary for what becomes of a weight, shared by the planner (`convert`, `inspect`),
the doctor and their reports, so "tied" or "unexpected" means one thing everywhere.

A source tensor (or a PyTorch checkpoint key, for the doctor) has a `SourceFate`; a parameter of
the target PyTorch model has a `TargetFate`. The values are the spellings the JSON reports use.
"""

from __future__ import annotations

from enum import StrEnum


class SourceFate(StrEnum):
    """What becomes of one source tensor or checkpoint key."""

    MAPPED = "mapped"  # renamed by a table rule to exactly one target, through declared ops
    AS_IS = "as-is"  # loads under its own name (doctor)
    REPAIRED = "repaired"  # loads after declared key repairs (doctor)
    TIED = "tied"  # fills a parameter the model shares with another (doctor)
    DUPLICATE = "duplicate"  # a stored copy of another source tensor, checked equal
    IGNORED = "ignored"  # not a model weight, by a declared rule with a reason
    DROPPED = "dropped"  # discarded with the head it belongs to (doctor --drop-head)
    MISMATCHED = "mismatched"  # placed, but its shape is not the target's
    UNEXPECTED = "unexpected"  # nothing in the model takes it

    @property
    def loads(self) -> bool:
        """Its values end up in the model."""
        return self in LOADING

    @property
    def lost(self) -> bool:
        """Its values would be lost: never allowed to pass silently."""
        return self in (SourceFate.MISMATCHED, SourceFate.UNEXPECTED)

    @property
    def changed(self) -> bool:
        """It loads or is set aside, but not as the file has it: a finding, not a loss."""
        return self in (SourceFate.REPAIRED, SourceFate.IGNORED, SourceFate.DROPPED)


LOADING = frozenset({SourceFate.MAPPED, SourceFate.AS_IS, SourceFate.REPAIRED, SourceFate.TIED})


class TargetFate(StrEnum):
    """How one parameter of the target PyTorch model gets its values."""

    PRODUCED = "produced"  # from a source tensor
    TIED = "tied"  # shares storage with another parameter, written once
    SYNTHESIZED = "synthesized"  # a declared fill (zeros, ones) with a reason
    REINITIALISED = "reinitialised"  # fresh random values, asked for (doctor --drop-head)
    MISSING = "missing"  # nothing fills it: it would stay randomly initialised

    @property
    def lost(self) -> bool:
        return self is TargetFate.MISSING


LABEL_WIDTH = 11  # the widest fate word, so text tables line up


def label(fate: SourceFate | TargetFate) -> str:
    """The fate as the first column of a text table."""
    return f"{fate.value:<{LABEL_WIDTH}}"
