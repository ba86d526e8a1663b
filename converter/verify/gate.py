"""The parity gate: when is a TF↔PyTorch difference rounding noise, and when is it a bug?

The TF reference computes in float32 and the converted model in its own dtype (float32, or
float16/bfloat16 with `convert --dtype`), so even an exact conversion differs by rounding, and
how much depends on the model (its depth, width and activation magnitudes) and on that dtype. A
fixed absolute bound is right for one model only. The default gate measures the noise instead:
the converted model is run a second time in float64 on the same inputs, and |candidate − float64|
of each output is the rounding noise the candidate's dtype adds to that output (the float64 run
is the exact result to many more digits than any of them can hold). An exact TF conversion is
another evaluation of the same function, so its difference from the candidate is about the sum of
two such noises; measured on real trained weights it is 0.9–1.3× the PyTorch noise alone in
float32, and 1.0–1.45× in float16 and bfloat16 (whose rounded weights add to it). Real conversion
bugs sit 100–10,000× above float32's noise; the half precisions' noise is 500–50,000× larger
than float32's, so they resolve fewer bugs (resolution.py says which). The gate passes an output
when its difference is within `NOISE_MULTIPLE` × that noise, clamped between a few ulps of the
candidate's dtype at the output's magnitude (so an output computed exactly on both sides still
gets a sliver of room) and a share of that magnitude (so a model whose noise is itself huge
cannot hide a bug behind it): `CAP_SHARE`, or `CAP_ULPS` ulps where the dtype is too coarse for
that (float16, bfloat16).

A user can replace it with fixed bounds (`--atol`, `--rtol`); the report records which decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..write.dtypes import DEFAULT_DTYPE, OUTPUT_DTYPES

NOISE_MULTIPLE = 10.0  # how far above the measured noise an exact conversion may land
FLOOR_ULPS = 4.0  # least tolerance, in the candidate dtype's ulps of the output's magnitude
CAP_SHARE = 1e-3  # most tolerance, as a share of the output's largest magnitude …
# … or this many ulps of the candidate's dtype, where that is more: 10× the noise of exact
# conversions reaches 21 ulps of float16 and of bfloat16 on real MiniLM (6 layers); 64 leaves
# room for models four times as deep. (For float32, 64 ulps is 8e-6: CAP_SHARE decides.)
CAP_ULPS = 64.0


@dataclass(frozen=True)
class Gate:
    """Measured-noise gate by default; fixed bounds when the user gives `atol` and/or `rtol`.
    `precision` is the candidate's dtype: whose noise is measured, whose ulps bound it."""

    atol: float | None = None
    rtol: float | None = None
    precision: str = DEFAULT_DTYPE

    @property
    def measured(self) -> bool:
        return self.atol is None and self.rtol is None

    @property
    def cap_share(self) -> float:
        return max(CAP_SHARE, CAP_ULPS * OUTPUT_DTYPES[self.precision].eps)

    def tolerance(self, noise: float, scale: float) -> float:
        """The largest max-abs difference allowed for an output whose largest reference
        magnitude is `scale` and whose measured noise (candidate vs float64) is `noise`."""
        if not self.measured:
            return (self.atol or 0.0) + (self.rtol or 0.0) * scale
        floor = FLOOR_ULPS * OUTPUT_DTYPES[self.precision].eps * scale
        cap = self.cap_share * scale
        return min(max(NOISE_MULTIPLE * noise, floor), max(cap, floor))

    def describe(self) -> str:
        if self.measured:
            p = self.precision
            return (
                f"max abs diff ≤ {NOISE_MULTIPLE:g} × the measured {p} noise "
                f"(converted model {p} vs float64), at least {FLOOR_ULPS:g} {p} ulps "
                f"and at most {self.cap_share:g} of the output's largest magnitude"
            )
        parts = [f"atol {self.atol:g}"] if self.atol is not None else []
        parts += [f"rtol {self.rtol:g} × the output's largest magnitude"] if self.rtol else []
        return "max abs diff ≤ " + " + ".join(parts) + " (fixed, set by the user)"

    def short(self) -> str:
        """A few words for one-line messages: what the tolerance was made of."""
        if self.measured:
            return f"{NOISE_MULTIPLE:g} × measured {self.precision} noise"
        parts = [f"atol {self.atol:g}"] if self.atol is not None else []
        parts += [f"rtol {self.rtol:g}"] if self.rtol else []
        return " + ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        if self.measured:
            return {
                "kind": "measured-noise",
                "precision": self.precision,
                "noise_multiple": NOISE_MULTIPLE,
                "floor_ulps": FLOOR_ULPS,
                "cap_share": self.cap_share,
            }
        return {"kind": "fixed", "atol": self.atol, "rtol": self.rtol}


MEASURED_NOISE = Gate()  # the default gate
