"""Config values that did not come from the source itself, each with where it came from and why.

A value the source's own config or its tensors give is a fact. Anything else is said, one line
each: a table default (a value the producer's code fixes but no checkpoint stores), a source value
the table translates into transformers' terms (a producer's "gelu" that is the tanh form), a
value guessed from a shape, or a value the user declared. The reasons are the tables' `why:`;
this module records and renders them and knows no architecture.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..tables import Table


class Kind(StrEnum):
    """Where a config value came from, when not from the source."""

    DEFAULT = "default"  # the table's config_defaults: the source does not state it
    TRANSLATED = "translated"  # the source's value, in the producer's terms, translated
    GUESSED = "guessed"  # read off a shape by a rule of thumb the producer uses
    USER = "user"  # --set KEY=VALUE or --config FILE


NO_REASON = "the table's default (it gives no reason)"
SETTING = "with --set"


def value_text(value: Any) -> str:
    """A config value as the user would type it after `--set KEY=`."""
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class Assumption:
    key: str
    value: Any
    kind: Kind
    reason: str
    source_value: Any = None  # what the source said, for a translated value

    def line(self) -> str:
        """One line for progress output and the reports."""
        said = f"{self.key}={value_text(self.value)}"
        if self.kind is Kind.USER:
            return f"declared {said} ({self.reason})"
        how = {
            Kind.DEFAULT: "default",
            Kind.TRANSLATED: f"translated from {value_text(self.source_value)}",
            Kind.GUESSED: "guessed",
        }[self.kind]
        return f"assumed {said} ({how}: {self.reason})"

    def to_dict(self) -> dict[str, Any]:
        out = {"key": self.key, "value": self.value, "kind": str(self.kind), "reason": self.reason}
        return out | ({"source_value": self.source_value} if self.kind is Kind.TRANSLATED else {})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Assumption:
        return cls(
            str(data["key"]),
            data.get("value"),
            Kind(data["kind"]),
            str(data.get("reason") or ""),
            data.get("source_value"),
        )


def defaults_applied(table: Table, config: dict[str, Any]) -> list[Assumption]:
    """The table defaults a config lacking their keys takes, with the table's reasons."""
    return [
        Assumption(key, value, Kind.DEFAULT, table.config_reasons.get(key, NO_REASON))
        for key, value in table.config_defaults.items()
        if key not in config
    ]


def declared(values: dict[str, Any], how: str) -> list[Assumption]:
    """Values the user declared (`how`: "with --set" or "in --config FILE")."""
    return [Assumption(k, v, Kind.USER, how) for k, v in values.items()]


def over(assumed: list[Assumption], user: list[Assumption]) -> list[Assumption]:
    """The table's assumptions, less those the user's values replace, then the user's."""
    replaced = {a.key for a in user}
    return [a for a in assumed if a.key not in replaced] + user


def assumption_lines(assumptions: list[dict[str, Any]], patches: list[dict[str, Any]]) -> list[str]:
    """One line per assumed or declared value and per declared patch, from the report's lists."""
    lines = [Assumption.from_dict(a).line() for a in assumptions]
    return lines + [
        f"declared patch {p['op']}={','.join(p['tensors'])} ({p['reason']})" for p in patches
    ]


def markdown_section(assumptions: list[dict[str, Any]], patches: list[dict[str, Any]]) -> list[str]:
    """The reports' section listing them (empty when the source gave every value)."""
    lines = assumption_lines(assumptions, patches)
    if not lines:
        return []
    return [
        "## Assumed and declared",
        "",
        "Values the source does not state, and what the user declared; everything else comes "
        "from the source's own config and tensors.",
        "",
        *(f"- {line}" for line in lines),
    ]
