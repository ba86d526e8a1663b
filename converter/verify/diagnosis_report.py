"""A diagnosis in words: the line for stdout and the error's hint, its parity_report.md section
and its parity_report.json entries. The best passing hypothesis leads, as one sentence and the
exact command that applies it; with none, the report says no single known cause explains it."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from .diagnosis import Diagnosis, DiagnosisRun

NONE_EXPLAINS = "no single known cause explains it"
SHOWN = 12  # rows of the tried-hypotheses table in parity_report.md


def convert_command(src: str | Path, out: str | Path, options: tuple[str, ...] = ()) -> str:
    """`tf2pt convert SRC OUT [options]`, with --force when OUT exists (a verified output)."""
    parts = ["tf2pt", "convert", shlex.quote(str(src)), shlex.quote(str(out)), *options]
    if Path(out).exists() and "--force" not in options:
        parts.append("--force")
    return " ".join(parts)


def _margin(d: Diagnosis) -> str:
    return "exact" if d.least_margin is None and not d.error else f"{d.least_margin or 0:.3g}×"


def _fix(best: Diagnosis, base: str) -> str:
    command = best.command(base)
    return f"fix: {command}" if command else "no tf2pt option applies this change yet"


def _clause(sentence: str) -> str:
    """A sentence as a clause of a longer line: no capital, no full stop."""
    return sentence[:1].lower() + sentence[1:].removesuffix(".")


def lead_line(run: DiagnosisRun | None, base: str) -> str:
    """One line: the likely cause and its command, or that none explains the failure."""
    if run is None:
        return ""
    if run.error:
        return f"the known causes could not be tried ({run.error})"
    best = run.best
    if best is None:
        return f"{NONE_EXPLAINS} ({len(run.entries)} known causes tried, none passes the gate)"
    return f"likely cause: {_clause(best.hypothesis)}; {_fix(best, base)}"


def diagnosis_line(run: DiagnosisRun, base: str) -> str:
    """The progress line after a diagnosis."""
    fixes = len(run.fixes)
    tried = f"{len(run.entries)} known causes tried in {run.seconds:.1f} s, {fixes} pass"
    return f"diagnosis: {lead_line(run, base)} ({tried})"


def diagnosis_json(run: DiagnosisRun | None, base: str) -> dict[str, Any]:
    """parity_report.json's `diagnosis`: every hypothesis tried, best first."""
    entries = [] if run is None else [d.to_dict(base) for d in run.entries]
    out: dict[str, Any] = {"diagnosis": entries}
    if run is not None and run.error:
        out["diagnosis_error"] = run.error
    return out


def lead_markdown(run: DiagnosisRun | None, base: str) -> list[str]:
    """The lines parity_report.md opens with when parity failed."""
    if run is None:
        return []
    best = run.best
    if run.error or best is None:
        return [f"**Diagnosis:** {lead_line(run, base)}.", ""]
    command = best.command(base)
    lines = [
        f"**Likely cause:** {best.hypothesis} With this change every output passes the gate "
        f"(least margin {_margin(best)}).",
        "",
    ]
    lines += ["```sh", command, "```", ""] if command else [f"({_fix(best, base)})", ""]
    others = len(run.fixes) - 1
    if others:
        lines += [f"{others} other change(s) also pass; see the diagnosis table below.", ""]
    return lines


def table_markdown(run: DiagnosisRun | None) -> list[str]:
    """The hypotheses tried, best first (passing ones all, then the closest failures)."""
    if run is None or not run.entries:
        return []
    shown = run.fixes + [d for d in run.entries if not d.passes][: max(0, SHOWN - len(run.fixes))]
    lines = [
        "",
        f"## Diagnosis: {len(run.entries)} known causes tried in {run.seconds:.1f} s "
        f"(weight layouts at `{run.tried_on}`, the first divergence)",
        "",
        "Each row is one change to the converted model, run against the TF outputs with the same",
        "tolerances; it passes only when every output does. `failed at` is the first output still",
        "beyond its tolerance (the trial stopped there).",
        "",
        "| passes | least margin | failed at | hypothesis |",
        "|---|---|---|---|",
    ]
    for d in shown:
        failed = f"`{d.stopped_at}`" if d.stopped_at else ("error" if d.error else "—")
        lines.append(f"| {'✅' if d.passes else '❌'} | {_margin(d)} | {failed} | {d.hypothesis} |")
    if len(shown) < len(run.entries):
        lines.append(f"\n…and {len(run.entries) - len(shown)} more in parity_report.json.")
    return lines
