"""What each dtype can resolve: which known conversion bugs the measured-noise gate still catches
when the converted model runs in that dtype.

Measured on real trained weights (`MEASURED_ON`) by `scripts/measure_resolution.py`: each bug is
put into a correct conversion in each dtype and verified; the number is the largest
difference ÷ tolerance over the outputs (above 1 the gate fails the output: the bug is caught;
below 1 it passes for rounding). tests/test_dtype.py measures two of them again. Parity reports
and model cards quote these, so a user of a float16 or bfloat16 output knows what its passing
verdict does and does not rule out.
"""

from __future__ import annotations

from typing import Any

MEASURED_ON = (
    "all-MiniLM-L6-v2, a trained BERT of 6 layers × 384, as transformers' TFBertForMaskedLM "
    "tf_model.h5, on the default parity inputs"
)
# bug → dtype → largest |TF − converted| ÷ tolerance over the outputs. The exact conversions
# themselves pass with least margins of 6.8× (float32), 7.0× (float16) and 7.7× (bfloat16); the
# masked-LM logits' top-1 agrees with the float32 reference's on 100%, 99.5% and 96.0% of tokens.
DETECTION: dict[str, dict[str, float]] = {
    "gelu → gelu_new": {"float32": 409.0, "float16": 0.313, "bfloat16": 0.141},
    "layer_norm_eps 1e-12 → 1e-5": {"float32": 2860.0, "float16": 2.08, "bfloat16": 0.284},
    "query and key swapped": {"float32": 45700.0, "float16": 26.8, "bfloat16": 3.39},
    "square kernel left untransposed": {"float32": 53300.0, "float16": 67.1, "bfloat16": 7.47},
    "a bias zeroed": {"float32": 2050.0, "float16": 1.85, "bfloat16": 0.281},
    "one head's rows permuted": {"float32": 30400.0, "float16": 19.4, "bfloat16": 2.46},
}


def resolution(precision: str) -> dict[str, Any]:
    """The bugs the gate catches and misses in `precision`, with their measured ratios."""
    ratios = {bug: by_dtype[precision] for bug, by_dtype in DETECTION.items()}
    return {
        "measured_on": MEASURED_ON,
        "caught": {bug: r for bug, r in ratios.items() if r > 1.0},
        "not_caught": {bug: r for bug, r in ratios.items() if r <= 1.0},
    }


def resolution_lines(precision: str) -> list[str]:
    """The resolution as sentences for parity_report.md and the model card."""
    found = resolution(precision)
    if not found["caught"] and not found["not_caught"]:
        return []

    def listed(bugs: dict[str, float]) -> str:
        return "; ".join(f"{bug} ({ratio:.3g}× the tolerance)" for bug, ratio in bugs.items())

    lines = [
        f"What a {precision} parity check can tell apart from rounding (measured on "
        f"{found['measured_on']}):"
    ]
    if found["caught"]:
        lines.append(f"- caught: {listed(found['caught'])}")
    if found["not_caught"]:
        lines.append(
            f"- **not** resolvable in {precision} (within its rounding noise, so a passing "
            f"verdict does not rule them out): {listed(found['not_caught'])}"
        )
    return lines
