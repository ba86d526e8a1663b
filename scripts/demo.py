"""End-to-end demo: make a small TF RoBERTa classifier with transformers' own TF class, then
convert and verify it with the `tf2pt` command exactly as a user would.

Run with `make demo`. Everything goes under ./demo-output (replaced on each run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo-output"
TF2PT = Path(sys.executable).with_name("tf2pt")


def make_tf_checkpoint(directory: Path) -> None:
    import numpy as np

    from converter.tf_import import start_up_notices_hidden

    with start_up_notices_hidden():  # TensorFlow's C++ start-up lines, as tf2pt hides them
        import tensorflow  # noqa: F401
        import transformers

    transformers.logging.set_verbosity_error()
    config = transformers.RobertaConfig(
        vocab_size=1000,
        hidden_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=130,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        layer_norm_eps=1e-5,
        id2label={0: "negative", 1: "neutral", 2: "positive"},
        label2id={"negative": 0, "neutral": 1, "positive": 2},
    )
    model = transformers.TFRobertaForSequenceClassification(config)
    model(model.dummy_inputs)
    rng = np.random.default_rng(0)  # stand-in for fine-tuning: every weight distinct
    for w in model.weights:
        w.assign((1.0 if "gamma" in w.name else 0.0) + rng.normal(0, 0.1, w.shape))
    model.save_pretrained(str(directory))


def main() -> int:
    shutil.rmtree(DEMO, ignore_errors=True)
    source, output = DEMO / "tf-roberta-classifier", DEMO / "pytorch-roberta-classifier"
    print(
        f"1/3 building a TF RoBERTa classifier with transformers' TFRobertaForSequence"
        f"Classification → {source}",
        flush=True,
    )
    make_tf_checkpoint(source)
    print(f"2/3 inspecting: {TF2PT.name} inspect {source}", flush=True)
    subprocess.run([str(TF2PT), "inspect", str(source)], check=True, stdout=subprocess.DEVNULL)
    print(f"3/3 converting and verifying: {TF2PT.name} convert {source} {output}", flush=True)
    result = subprocess.run([str(TF2PT), "convert", str(source), str(output)])
    if result.returncode != 0:
        print("demo: conversion failed", file=sys.stderr)
        return result.returncode
    print("\nDone.")
    print(f"  converted model:   {output}  (model.safetensors, config.json)")
    print(f"  weight accounting: {output / 'conversion_report.json'}")
    print(f"  parity report:     {output / 'parity_report.md'}  (+ .json, .png)")
    print(f"  load it with: RobertaForSequenceClassification.from_pretrained('{output}')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
