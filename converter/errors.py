"""Expected failures, each with a one-line user-facing message; the CLI catches them once."""

from __future__ import annotations

from pathlib import Path


class Tf2ptError(Exception):
    """Base of every expected failure. `exit_code` follows the CLI contract (2 input, 1 result)."""

    exit_code = 1

    def __init__(
        self,
        what: str,
        path: str | Path | None = None,
        hint: str | None = None,
        details: str | None = None,
    ):
        self.what = what
        self.path = str(path) if path is not None else None
        self.hint = hint
        self.details = details
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = f"{self.path}: " if self.path else ""
        todo = f" — {self.hint}" if self.hint else ""
        return f"{where}{self.what}{todo}"


class InputError(Tf2ptError):
    """The source cannot be read or is not something we convert (bad file, missing config)."""

    exit_code = 2


class UsageError(Tf2ptError):
    """The command line asks for something inconsistent (existing output without --force, …)."""

    exit_code = 2


class MappingTableError(Tf2ptError):
    """A YAML mapping table is malformed; a bug in the tables, never in the user's input."""

    exit_code = 2


class AccountingError(Tf2ptError):
    """Some tensor is unexpected, missing or has the wrong shape: the conversion would be wrong."""

    exit_code = 1


class ConfigConflictError(Tf2ptError):
    """The source config disagrees with the weights (e.g. num_labels vs classifier rows)."""

    exit_code = 1


class OutputError(Tf2ptError):
    """The output location cannot be written."""

    exit_code = 2


class ParityError(Tf2ptError):
    """The converted model does not reproduce the source model within tolerance."""

    exit_code = 1


class BatchError(Tf2ptError):
    """Some sources of a batch conversion failed; the summary says which and why."""

    exit_code = 1


class MissingDependencyError(Tf2ptError):
    """A command needs an optional framework that is not installed; the hint names the extra."""

    exit_code = 2
