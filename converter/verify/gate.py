"""The parity gate: when is a TF↔PyTorch difference rounding noise, and when is it a bug?

Both models compute in float32, so even an exact conversion differs by float32 rounding, and how
much depends on the model: its depth, width and activation magnitudes. A fixed absolute bound is
right for one model only. The default gate measures the noise instead: the converted model is run
a second time in float64 on the same inputs, and |float32 − float64| of each output is the
rounding noise float32 adds to that output (the float64 run is the exact result to many more
digits than float32 can hold). An exact TF conversion is another float32 evaluation of the same
function, so its difference from the PyTorch float32 run is about the sum of two such noises;
measured on real trained weights it is 0.9–1.3× the PyTorch noise alone. Real conversion bugs sit
100–10,000× above it. The gate passes an output when its difference is within
`NOISE_MULTIPLE` × that noise, clamped between a few float32 ulps of the output's magnitude (so an
output computed exactly on both sides still gets a sliver of room) and a small share of that
magnitude (so a model whose float32 noise is itself huge cannot hide a bug behind it).

A user can replace it with fixed bounds (`--atol`, `--rtol`); the report records which decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FLOAT32_EPS = 2.0**-23  # spacing of float32 values just above 1.0
NOISE_MULTIPLE = 10.0  # how far above the measured noise an exact conversion may land
FLOOR_ULPS = 4.0  # least tolerance, in float32 ulps of the output's largest magnitude
CAP_SHARE = 1e-3  # most tolerance, as a share of the output's largest magnitude


@dataclass(frozen=True)
class Gate:
    """Measured-noise gate by default; fixed bounds when the user gives `atol` and/or `rtol`."""

    atol: float | None = None
    rtol: float | None = None

    @property
    def measured(self) -> bool:
        return self.atol is None and self.rtol is None

    def tolerance(self, noise: float, scale: float) -> float:
        """The largest max-abs difference allowed for an output whose largest reference
        magnitude is `scale` and whose measured float32 noise is `noise`."""
        if not self.measured:
            return (self.atol or 0.0) + (self.rtol or 0.0) * scale
        floor = FLOOR_ULPS * FLOAT32_EPS * scale
        cap = CAP_SHARE * scale
        return min(max(NOISE_MULTIPLE * noise, floor), max(cap, floor))

    def describe(self) -> str:
        if self.measured:
            return (
                f"max abs diff ≤ {NOISE_MULTIPLE:g} × the measured float32 noise "
                f"(converted model float32 vs float64), at least {FLOOR_ULPS:g} float32 ulps "
                f"and at most {CAP_SHARE:g} of the output's largest magnitude"
            )
        parts = [f"atol {self.atol:g}"] if self.atol is not None else []
        parts += [f"rtol {self.rtol:g} × the output's largest magnitude"] if self.rtol else []
        return "max abs diff ≤ " + " + ".join(parts) + " (fixed, set by the user)"

    def short(self) -> str:
        """A few words for one-line messages: what the tolerance was made of."""
        if self.measured:
            return f"{NOISE_MULTIPLE:g} × measured float32 noise"
        parts = [f"atol {self.atol:g}"] if self.atol is not None else []
        parts += [f"rtol {self.rtol:g}"] if self.rtol else []
        return " + ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        if self.measured:
            return {
                "kind": "measured-noise",
                "noise_multiple": NOISE_MULTIPLE,
                "floor_ulps": FLOOR_ULPS,
                "cap_share": CAP_SHARE,
            }
        return {"kind": "fixed", "atol": self.atol, "rtol": self.rtol}


MEASURED_NOISE = Gate()  # the default gate
