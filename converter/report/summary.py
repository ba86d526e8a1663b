"""One table for a batch conversion: a row per source, from the files the pipeline left behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..write.model_files import write_json

SUMMARY_JSON, SUMMARY_MD = "summary.json", "summary.md"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _stamp(path: Path) -> tuple[str, float | None]:
    """The pipeline's stamp: "ok <seconds>" or "failed <seconds>"; absent: never run."""
    try:
        status, seconds = path.read_text().split()
        return status, float(seconds)
    except (OSError, ValueError):
        return "not run", None


def _error_line(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "no log"
    errors = [line for line in lines if line.startswith("tf2pt: error:")]
    if errors:
        return errors[-1].removeprefix("tf2pt: error:").strip()
    return lines[-1].strip() if lines else "failed without output"


def summary_rows(out_dir: Path, sources: Path | None = None) -> list[dict[str, Any]]:
    """A row per source: every stamp in out_dir, and every entry of `sources` (not yet run)."""
    names = {p.stem for p in out_dir.glob("*.stamp")}
    if sources is not None:
        names |= {p.name for p in sources.iterdir() if not p.name.startswith(".")}
    rows = []
    for name in sorted(names):
        status, seconds = _stamp(out_dir / f"{name}.stamp")
        report = _read_json(out_dir / name / "conversion_report.json") if status == "ok" else {}
        parity = _read_json(out_dir / name / "parity_report.json") if status == "ok" else {}
        rows.append(
            {
                "name": name,
                "status": status,
                "architecture": report.get("architecture"),
                "head": report.get("head"),
                "class": report.get("class"),
                "parameters": report.get("counts", {}).get("parameters"),
                "max_abs_diff": parity.get("max_abs_diff"),
                "least_margin": parity.get("least_margin"),
                "seconds": seconds,
                "error": _error_line(out_dir / f"{name}.log") if status == "failed" else None,
            }
        )
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def markdown(rows: list[dict[str, Any]]) -> str:
    ok = sum(r["status"] == "ok" for r in rows)
    lines = [
        f"# Conversion summary: {ok} of {len(rows)} ok",
        "",
        "| source | status | architecture | head | parameters | max abs diff | least margin | "
        "seconds | error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [
            r["name"],
            r["status"],
            r["architecture"],
            r["head"],
            r["parameters"],
            r["max_abs_diff"],
            r["least_margin"],
            r["seconds"],
            r["error"],
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(out_dir: Path, sources: Path | None = None) -> list[dict[str, Any]]:
    rows = summary_rows(out_dir, sources)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / SUMMARY_JSON, rows)
    (out_dir / SUMMARY_MD).write_text(markdown(rows))
    return rows
