"""Damage the way real converters go wrong, and what `tf2pt verify` must then say: it fails
cleanly and names where the damage first shows. Applied to copies (`mutated_copy`)."""

from __future__ import annotations

from pathlib import Path

from .conftest import read_json, run_cli


def swapped(first: str, second: str):
    """A `mutated_copy` mutation: the weights and biases of two layers of one shape change
    places (`first.weight` ↔ `second.weight`, and the biases) — a query and key swapped keeps
    every shape, so only parity can see it."""

    def mutate(tensors) -> None:
        for kind in ("weight", "bias"):
            a, b = f"{first}.{kind}", f"{second}.{kind}"
            tensors[a], tensors[b] = tensors[b], tensors[a]

    return mutate


def verify_fails_at(src: Path, out: Path, first: str) -> dict:
    """`tf2pt verify src out` fails cleanly (exit 1, no traceback) and names `first` as the
    first divergence; returns the parity report."""
    code, _, err = run_cli(["verify", str(src), str(out)])
    assert code == 1 and "parity failed" in err and "Traceback" not in err, err
    report = read_json(out / "parity_report.json")
    assert report["first_divergence"]["name"] == first, report["first_divergence"]
    return report
