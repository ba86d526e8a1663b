"""The output's model card, `README.md`: model-hub front matter, how to load the model, where it
came from, the weight accounting and the parity figures.

Converted dirs are usually pushed to a model hub next, and provenance is what their users ask
for. Built only from the conversion report and `parity_report.json`, with no clock, so a rerun
writes the same bytes.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from ..provenance.assumptions import markdown_section
from ..tables import load_yaml, tables_dir
from ..tables.schemas import MODEL_CARD

CARD_FILE = "README.md"
LOAD_FROM = "path/to/this/directory"  # the card never names the output dir: same input, same bytes
PARITY_JSON = "parity_report.json"
COUNT_ROWS = (
    ("source_tensors", "source tensors"),
    ("mapped", "mapped to a PyTorch parameter"),
    ("duplicates", "stored copies, checked equal"),
    ("ignored", "ignored by a declared rule (optimizer state, …)"),
    ("unexpected", "unexpected"),
    ("target_parameters", "PyTorch parameters"),
    ("produced", "produced from the source"),
    ("tied", "tied"),
    ("synthesized", "synthesized (with a reason)"),
    ("missing", "missing"),
    ("parameters", "parameter values written"),
)


@cache
def _hub_tags() -> dict[str, dict[str, str]]:
    """Head → pipeline tag and layout → tag (mappings/shared/model-card.yaml)."""
    return load_yaml(tables_dir() / "shared" / "model-card.yaml", MODEL_CARD)


def _pipeline_tag(report: dict[str, Any]) -> str | None:
    return _hub_tags()["pipeline_tags"].get(report["head"])


def _base_model(report: dict[str, Any]) -> str | None:
    """A hub id the source names itself (`_name_or_path` like `org/name`), never a local path."""
    name = str(report.get("source", {}).get("name_or_path") or "")
    looks_like_id = name.count("/") == 1 and not name.startswith((".", "/", "~"))
    return name if looks_like_id else None


def front_matter(report: dict[str, Any]) -> list[str]:
    layout = report["source"]["layout"]
    layout_tag = _hub_tags()["layout_tags"].get(layout, layout)
    tags = ["tf2pt", report["architecture"], layout_tag, "pytorch"]
    lines = ["---", "library_name: transformers"]
    base = _base_model(report)
    if base:
        lines.append(f"base_model: {base}")
    if _pipeline_tag(report):
        lines.append(f"pipeline_tag: {_pipeline_tag(report)}")
    lines += ["tags:", *(f"- {t}" for t in dict.fromkeys(tags)), "---"]
    return lines


def _how_to_load(report: dict[str, Any]) -> list[str]:
    cls = report["class"]
    lines = [
        "## How to load",
        "",
        "```python",
        f"from transformers import AutoTokenizer, {cls}",
        "",
        f'where = "{LOAD_FROM}"  # or the model-hub id it was pushed to',
        f"model = {cls}.from_pretrained(where)",
    ]
    if report.get("tokenizer", {}).get("files"):
        lines.append("tokenizer = AutoTokenizer.from_pretrained(where)")
    if _pipeline_tag(report) and report.get("tokenizer", {}).get("files"):
        lines += [
            "",
            "from transformers import pipeline",
            "",
            f'run = pipeline("{_pipeline_tag(report)}", model=where)',
        ]
    return lines + ["```"]


def _source(report: dict[str, Any]) -> list[str]:
    src = report["source"]
    return [
        "## Source",
        "",
        "| | |",
        "|---|---|",
        f"| path | `{src['path']}` |",
        f"| layout | {src['layout']} |",
        f"| weight files | {', '.join(f'`{w}`' for w in src['weight_files'])} |",
        f"| mapping table | `{report['table']}` |",
        f"| head | {report['head']} → `{report['class']}` |",
        f"| dtype | {report.get('dtype', 'float32')} (every floating tensor) |",
        f"| converted by | tf2pt {report['tool']['version']} |",
    ]


def _tokenizer(report: dict[str, Any]) -> list[str]:
    tok = report.get("tokenizer")
    if not tok:
        return []
    lines = ["## Tokenizer", "", f"- {tok['how']}, from `{tok['from']}`"]
    if tok.get("settings"):
        lines.append("- settings: " + ", ".join(f"`{k}={v}`" for k, v in tok["settings"].items()))
    lines += [f"- evidence: {e}" for e in tok.get("evidence", [])]
    if tok.get("style"):
        lines.append(f"- written as `{tok['class']}`, {tok['style']} to the source's rules")
    deviation = tok.get("deviation") or {}
    if deviation.get("rows_differing"):
        rows = f"{deviation['rows_differing']} of {deviation['rows_compared']} corpus rows"
        lines.append(
            f"- chosen deviation: the written {deviation['canonical']} differs from the source on "
            f"{rows}"
            if deviation["chosen"]
            else f"- the source's tokenizer deviates from {deviation['canonical']} on {rows}; "
            "the written one follows the source"
        )
    parity = tok.get("parity")
    if parity is None:
        lines.append("- tokenizer parity: not run")
    else:
        verdict = "passed" if parity["passed"] else "FAILED"
        lines.append(
            f"- tokenizer parity {verdict}: {parity['rows_equal']} of {parity['rows_compared']} "
            f"corpus rows give identical ids with {parity['reference']}"
        )
    return lines


def _accounting(report: dict[str, Any]) -> list[str]:
    counts = report["counts"]
    rows = [f"| {what} | {counts[key]:,} |" for key, what in COUNT_ROWS if key in counts]
    return ["## Weight accounting", "", "| | count |", "|---|---|", *rows]


def _num(x: Any) -> str:
    return f"{x:.3e}" if isinstance(x, int | float) else "—"


def _parity(parity: dict[str, Any] | None) -> list[str]:
    lines = ["## Parity (TensorFlow vs PyTorch, same inputs)", ""]
    if parity is None:
        return lines + ["Parity was not run (converted with `--no-verify`)."]
    criterion = parity.get("criterion") or f"max abs diff ≤ atol {parity.get('atol', '—')}"
    verdict = "passed" if parity.get("passed") else "FAILED"
    lines += [
        f"Verdict: **{verdict}**; criterion: {criterion}.",
        "",
        "| output | what | max abs diff | tolerance | ok |",
        "|---|---|---|---|---|",
    ]
    for o in parity.get("outputs", []):
        tolerance = o.get("tolerance", parity.get("atol"))
        ok = "yes" if o.get("passed") else "NO"
        lines.append(
            f"| `{o.get('name')}` | {o.get('description', '')} | {_num(o.get('max_abs_diff'))} "
            f"| {_num(tolerance)} | {ok} |"
        )
    return lines + _precision(parity)


def _precision(parity: dict[str, Any]) -> list[str]:
    """For a float16/bfloat16 model: its top-1 agreement with the float32 reference, and what a
    check in its dtype can and cannot tell apart from rounding."""
    from ..verify.resolution import resolution_lines

    dtype = parity.get("dtype", "float32")
    if dtype == "float32":
        return []
    lines = ["", f"The model ran in {dtype}, the TensorFlow reference in float32."]
    for o in parity.get("outputs", []):
        if o.get("argmax_agreement") is not None:
            lines.append(
                f"Top-1 agreement of `{o['name']}` with the float32 reference: "
                f"{o['argmax_agreement']:.2%} of rows."
            )
    return lines + ["", *resolution_lines(dtype)]


def model_card(report: dict[str, Any], parity: dict[str, Any] | None) -> str:
    name = Path(report["source"]["path"]).name or report["source"]["path"]
    sections = [
        front_matter(report),
        [
            f"# {name}",
            "",
            f"A PyTorch `{report['class']}` converted from a TensorFlow/Keras "
            "checkpoint by tf2pt, which accounts for every weight and checks the conversion by "
            "running both models.",
        ],
        _how_to_load(report),
        _source(report),
        markdown_section(report.get("assumptions", []), report.get("patches", [])),
        _tokenizer(report),
        _accounting(report),
        _parity(parity),
    ]
    return "\n\n".join("\n".join(s) for s in sections if s) + "\n"


def write_model_card(directory: Path, report: dict[str, Any]) -> None:
    path = directory / PARITY_JSON
    parity = json.loads(path.read_text()) if path.is_file() else None
    (directory / CARD_FILE).write_text(model_card(report, parity))
