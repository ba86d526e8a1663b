"""Parity reports for people and machines: parity_report.json, .md and .png."""

from __future__ import annotations

import math
from pathlib import Path

from ..provenance.assumptions import markdown_section
from ..verify.diagnosis_report import lead_markdown, table_markdown
from ..verify.parity import ParityResult, deviation_line
from ..verify.resolution import resolution_lines
from ..write.model_files import write_json

JSON_FILE, MD_FILE, PNG_FILE = "parity_report.json", "parity_report.md", "parity_report.png"
PASSED_COLOR, FAILED_COLOR = "tab:green", "tab:red"


def _num(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.3e}" if (x == 0 or abs(x) < 1e-3 or abs(x) >= 1e4) else f"{x:.6f}"


def margin_text(x: float | None) -> str:
    """A margin with its significant digits: 0.0016×, 6.7×, 964×, 12,000× ("exact" for None)."""
    if x is None:
        return "exact"
    return f"{x:,.0f}×" if x >= 100 else f"{x:.2g}×"


def markdown(result: ParityResult) -> str:
    verdict = "PASSED" if result.passed else "FAILED"
    first = result.first_divergence
    assumed = markdown_section(result.assumptions, result.patches)
    assumed += ["", "## Outputs", ""] if assumed else []
    lines = [
        f"# Parity report: {verdict}",
        "",
        *lead_markdown(result.diagnosis, result.fix_command),
        f"- model: `{result.class_name}`",
        f"- source: `{result.source}`, run as {result.reference}",
        f"- converted: `{result.output}`",
        f"- criterion: {result.gate.describe()}; the converted model in {result.precision} "
        "against the float32 reference, non-padding positions",
        f"- overall max abs diff: {_num(result.max_abs_diff)}; least margin (tolerance ÷ "
        f"diff): {margin_text(result.least_margin)}",
        "- first divergence: "
        + ("none" if first is None else f"`{first.name}` ({first.description})"),
        f"- inputs: batches {result.inputs['batches']}, row lengths {result.inputs['lengths']}",
        *(
            [f"- not compared (the source model has no such output): {result.not_compared}"]
            if result.not_compared
            else []
        ),
        *(f"- {deviation_line(d, result.class_name)}" for d in result.declared_deviations),
        "- versions: " + ", ".join(f"{k} {v}" for k, v in result.versions.items()),
        "",
        *assumed,
        f"`noise` is the converted model's own {result.precision} rounding noise on that output "
        f"(its {result.precision}",
        "run against its float64 run); `margin` is how many times the difference could grow",
        "before it fails; `argmax` is the share of rows whose top-1 agrees with the reference's.",
        "",
        "| # | output | what | max abs | noise | tolerance | margin | mean abs | max rel | "
        "cosine | argmax | ok |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for d in result.diffs:
        argmax = "—" if d.argmax_agreement is None else f"{d.argmax_agreement:.0%}"
        lines.append(
            f"| {d.index} | `{d.name}` | {d.description} | {_num(d.max_abs_diff)} | "
            f"{_num(d.noise)} | {_num(d.tolerance)} | {margin_text(d.margin)} | "
            f"{_num(d.mean_abs_diff)} | {_num(d.max_rel_diff)} | {d.cosine:.8f} | "
            f"{argmax} | {'✅' if d.passed else '❌'} |"
        )
    resolution = resolution_lines(result.precision)
    if resolution:
        lines += ["", *resolution]
    lines += table_markdown(result.diagnosis)
    return "\n".join(lines) + "\n"


def plot(result: ParityResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    floor = 1e-12  # exact zeros cannot sit on a log axis

    def finite(x: float) -> float:
        return max(x, floor) if math.isfinite(x) else 1e6

    names = [d.name for d in result.diffs]
    at = range(len(names))
    from matplotlib.patches import Patch

    colors = [PASSED_COLOR if d.passed else FAILED_COLOR for d in result.diffs]
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(names) + 2), 4), dpi=100)
    ax.bar(at, [finite(d.max_abs_diff) for d in result.diffs], color=colors)
    ax.plot(
        at,
        [finite(d.tolerance) for d in result.diffs],
        "k_",
        markersize=18,
        mew=2,
        label="tolerance",
    )
    if result.gate.measured:
        noise = f"{result.precision} noise"
        ax.plot(at, [finite(d.noise) for d in result.diffs], "b.", label=noise)
    ax.set_yscale("log")
    ax.set_xticks(at, names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("max abs diff")
    ax.set_title(f"{result.class_name}: parity {'passed' if result.passed else 'FAILED'}")
    bars = [
        Patch(color=PASSED_COLOR, label="TF vs PyTorch, passed"),
        Patch(color=FAILED_COLOR, label="TF vs PyTorch, FAILED"),
    ]
    ax.legend(handles=bars + ax.get_legend_handles_labels()[0], fontsize=8)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def write_reports(result: ParityResult, directory: Path) -> list[str]:
    write_json(directory / JSON_FILE, result.to_dict())
    (directory / MD_FILE).write_text(markdown(result))
    plot(result, directory / PNG_FILE)
    return [JSON_FILE, MD_FILE, PNG_FILE]
