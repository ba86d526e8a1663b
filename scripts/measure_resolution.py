"""Measure which known conversion bugs each output dtype's parity gate still catches.

On real trained weights (all-MiniLM-L6-v2 as transformers' TFBertForMaskedLM, a tf_model.h5):
convert once per dtype, put each known bug into a copy of the correct output, run the converted
model and judge it with the default gate against the TF reference (computed once). Prints, per
bug and dtype, the largest difference ÷ tolerance over the outputs (> 1: caught), and the
Python literal that converter/verify/resolution.py holds. Run from the repository root:

    .venv/bin/python scripts/measure_resolution.py [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DTYPES = ("float32", "float16", "bfloat16")


def _tensors(mutate: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(out: Path) -> None:
        from safetensors.torch import load_file, save_file

        tensors = load_file(str(out / "model.safetensors"))
        mutate(tensors)
        tensors = {k: v.contiguous() for k, v in tensors.items()}
        save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})

    return apply


def _config(**changes) -> Callable[[Path], None]:
    def apply(out: Path) -> None:
        config = json.loads((out / "config.json").read_text())
        (out / "config.json").write_text(json.dumps(config | changes))

    return apply


def _swap(a: str, b: str):
    def mutate(t: dict) -> None:
        for kind in ("weight", "bias"):
            t[f"{a}.{kind}"], t[f"{b}.{kind}"] = t[f"{b}.{kind}"], t[f"{a}.{kind}"]

    return mutate


def _transpose(name: str):
    def mutate(t: dict) -> None:
        t[name] = t[name].T

    return mutate


def _zero(name: str):
    def mutate(t: dict) -> None:
        t[name] = t[name] * 0

    return mutate


def _roll_one_head(name: str, head: int, heads: int):
    """One head's rows rotated by one inside q (its [heads, head_dim] split permuted)."""

    def mutate(t: dict) -> None:
        import torch

        for kind in ("weight", "bias"):
            w = t[f"{name}.{kind}"]
            size = w.shape[0] // heads
            rows = torch.arange(w.shape[0])
            block = rows[head * size : (head + 1) * size]
            rows[head * size : (head + 1) * size] = torch.roll(block, 1)
            t[f"{name}.{kind}"] = w[rows]

    return mutate


LAYER = "bert.encoder.layer.{}."
# The bugs and where they are put: q/k swapped in layer 2, layer 3's attention output kernel
# left untransposed, layer 5's output bias zeroed, one head (7) rotated inside layer 4's query.
BUGS: dict[str, Callable[[Path], None]] = {
    "gelu → gelu_new": _config(hidden_act="gelu_new"),
    "layer_norm_eps 1e-12 → 1e-5": _config(layer_norm_eps=1e-5),
    "query and key swapped": _tensors(
        _swap(LAYER.format(2) + "attention.self.query", LAYER.format(2) + "attention.self.key")
    ),
    "square kernel left untransposed": _tensors(
        _transpose(LAYER.format(3) + "attention.output.dense.weight")
    ),
    "a bias zeroed": _tensors(_zero(LAYER.format(5) + "output.dense.bias")),
    "one head's rows permuted": _tensors(
        _roll_one_head(LAYER.format(4) + "attention.self.query", 7, 12)
    ),
}


def measure(work: Path) -> dict[str, dict[str, float]]:
    from converter import api
    from converter.plan.analysis import analyse
    from converter.verify.compare import compare_outputs
    from converter.verify.gate import Gate
    from converter.verify.inputs import make_inputs
    from converter.verify.runners import declared_runner
    from converter.verify.torch_side import run_converted
    from tests import real_models
    from tests.real_weights import minilm_dir

    src = work / "minilm-tf-masked-lm"
    if not (src / "tf_model.h5").exists():
        real_models.save_tf_h5(minilm_dir(), "BertForMaskedLM", src)
    analysis = analyse(src)
    plan = analysis.plan
    inputs = make_inputs(plan.dims, plan.table.position_offset)
    reference = declared_runner(plan)(analysis.source, plan)
    references = [reference.run(b) for b in inputs.batches]
    masks = [b.flat_mask() for b in inputs.batches]

    def judged(out: Path, dtype: str) -> list:
        runs = run_converted(out, plan.class_name, inputs.batches, precision=dtype)
        rows = zip(references, runs.candidate, runs.float64, masks, strict=True)
        return compare_outputs(list(rows), Gate(precision=dtype))

    found: dict[str, dict[str, float]] = {bug: {} for bug in BUGS}
    for dtype in DTYPES:
        correct = work / f"converted-{dtype}"
        if not correct.exists():
            api.convert(src, correct, dtype=dtype, verify=False)
        exact = judged(correct, dtype)
        top1 = next(d.argmax_agreement for d in exact if d.argmax_agreement is not None)
        print(
            f"{dtype}: exact conversion passes={all(d.passed for d in exact)}, least margin "
            f"{min(d.margin for d in exact if d.margin):.3g}×, top-1 agreement {top1:.4f}",
            flush=True,
        )
        for bug, mutate in BUGS.items():
            broken = work / f"broken-{dtype}"
            shutil.rmtree(broken, ignore_errors=True)
            shutil.copytree(correct, broken)
            mutate(broken)
            diffs = judged(broken, dtype)
            ratio = max(d.max_abs_diff / d.tolerance for d in diffs)
            first = next((d.name for d in diffs if not d.passed), "none")
            found[bug][dtype] = float(f"{ratio:.3g}")
            print(f"  {bug}: {ratio:.3g}× tolerance, first divergence {first}", flush=True)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="keep the sources and outputs here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="tf2pt-resolution-"))
    work.mkdir(parents=True, exist_ok=True)
    found = measure(work)
    print("\nDETECTION: dict[str, dict[str, float]] = {")
    for bug, by_dtype in found.items():
        print(f"    {bug!r}: {by_dtype!r},")
    print("}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
