"""Conversion speed and memory, measured side by side in one run (`make bench`).

Builds a roberta-base-sized and a roberta-large-sized TFRobertaForSequenceClassification
checkpoint once (cached in .bench-cache/), then, alternating the order on each round, times
`tf2pt convert --no-verify`, the naive load-everything script, and `cp` of the file, each as its
own process, and reports the median wall time and the peak RSS of each. Finally it times
`tf2pt verify` on roberta-base. Ratios, not absolute seconds, are the result: they hold on any
machine. A roberta-base-sized transformers SavedModel (`saved_model/1`) measures the TF2 reader's
peak RSS against its variables' size (the reader needs no TensorFlow), next to what importing
TensorFlow and opening the bundle with TF's own reader alone costs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".bench-cache"
BIN = Path(sys.executable).parent
BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)
SIZES = {
    "roberta-base": BASE,
    "roberta-large": LARGE,
    # XLM-R large's shape: RoBERTa large with a 250,002-token vocabulary (a 1 GB embedding table).
    "xlmr-large": dict(LARGE, vocab_size=250002),
}
BUILD = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import transformers
transformers.logging.set_verbosity_error()
config = transformers.RobertaConfig(**{**dict(vocab_size=50265, max_position_embeddings=514,
    type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5),
    **eval(sys.argv[2])})
model = transformers.TFRobertaForSequenceClassification(config)
model(model.dummy_inputs)
model.save_pretrained(sys.argv[1], saved_model=len(sys.argv) > 3)
"""
TF_FLOOR = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
tf.train.load_checkpoint(sys.argv[1])
"""
SAVED_MODEL = "roberta-base-savedmodel"


# The floor of `tf2pt verify`: the TF half alone (import, build, forward on the parity batch).
TF_ALONE = """
import os, sys
os.environ.update(TF_CPP_MIN_LOG_LEVEL="3", USE_TORCH="0")
from converter.convert import ConvertOptions, analyse
from converter.verify.inputs import make_inputs
from converter.verify.runners import declared_runner
analysis = analyse(sys.argv[1], ConvertOptions())
plan = analysis.plan
inputs = make_inputs(plan.dims, plan.table.position_offset)
runner = declared_runner(plan)(analysis.source, plan)
[runner.run(batch) for batch in inputs.batches]
"""


def checkpoint(name: str) -> Path:
    directory = CACHE / name
    if not (directory / "tf_model.h5").exists():
        print(f"building {name} (once; cached in {CACHE})", flush=True)
        shutil.rmtree(directory, ignore_errors=True)
        subprocess.run([sys.executable, "-c", BUILD, str(directory), repr(SIZES[name])], check=True)
    return directory


def saved_model() -> Path:
    """A roberta-base-sized SavedModel of TFRobertaForSequenceClassification (cached)."""
    directory = CACHE / SAVED_MODEL
    if not (directory / "saved_model" / "1" / "saved_model.pb").exists():
        print(f"building {SAVED_MODEL} (once; cached in {CACHE})", flush=True)
        shutil.rmtree(directory, ignore_errors=True)
        sizes = repr(SIZES["roberta-base"])
        subprocess.run([sys.executable, "-c", BUILD, str(directory), sizes, "saved"], check=True)
    return directory / "saved_model" / "1"


def bench_saved_model(rounds: int) -> list[tuple[str, bool, str]]:
    """Peak RSS of converting a SavedModel, as a fraction of its variables' size."""
    src = saved_model()
    variables_mb = sum(p.stat().st_size for p in (src / "variables").iterdir()) / 1e6
    out = CACHE / "savedmodel-out"
    runs = []
    for _ in range(rounds):
        shutil.rmtree(out, ignore_errors=True)
        runs.append(measure([str(BIN / "tf2pt"), "convert", str(src), str(out), "--no-verify"]))
    shutil.rmtree(out, ignore_errors=True)
    wall = statistics.median(w for w, _ in runs)
    rss = max(m for _, m in runs)
    _, floor = measure([sys.executable, "-c", TF_FLOOR, str(src / "variables" / "variables")])
    print(
        f"\n{SAVED_MODEL} ({variables_mb:.0f} MB of variables): tf2pt convert --no-verify "
        f"{wall:.2f} s, peak RSS {rss:.0f} MB ({rss / variables_mb:.2f}×); for comparison, "
        f"importing TensorFlow and opening the bundle with its reader alone: {floor:.0f} MB "
        f"({floor / variables_mb:.2f}×)"
    )
    ratio = rss / variables_mb
    return [(f"peak RSS ≤ 0.3× variables ({SAVED_MODEL})", ratio <= 0.3, f"{ratio:.2f}×")]


def measure(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(argv)}\n{err}")
    return wall, usage.ru_maxrss / 1024


def commands(src: Path, out: Path) -> dict[str, list[str]]:
    return {
        "tf2pt convert --no-verify": [
            str(BIN / "tf2pt"),
            "convert",
            str(src),
            str(out),
            "--no-verify",
            "--force",
        ],
        "naive h5py load-all": [
            sys.executable,
            str(ROOT / "scripts/naive_convert.py"),
            str(src),
            str(out),
        ],
        "cp tf_model.h5": ["cp", str(src / "tf_model.h5"), str(out / "tf_model.h5")],
    }


def bench_size(name: str, rounds: int) -> dict[str, tuple[float, float]]:
    src = checkpoint(name)
    out = CACHE / f"{name}-out"
    runs: dict[str, list[tuple[float, float]]] = {}
    tools = list(commands(src, out))
    for r in range(rounds):
        order = tools[r % len(tools) :] + tools[: r % len(tools)]  # alternate who goes first
        for tool in order:
            shutil.rmtree(out, ignore_errors=True)
            if tool.startswith("cp"):
                out.mkdir(parents=True)
            runs.setdefault(tool, []).append(measure(commands(src, out)[tool]))
    shutil.rmtree(out, ignore_errors=True)
    return {t: (statistics.median(w for w, _ in v), max(m for _, m in v)) for t, v in runs.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", nargs="*", default=list(SIZES))
    parser.add_argument("--no-savedmodel", action="store_true", help="skip the SavedModel case")
    args = parser.parse_args()
    results, sizes_mb = {}, {}
    for name in args.sizes:
        results[name] = bench_size(name, args.rounds)
        sizes_mb[name] = (CACHE / name / "tf_model.h5").stat().st_size / 1e6
    print(
        f"\n| checkpoint | tool | wall s (median of {args.rounds}) | × naive | peak RSS MB | "
        "RSS ÷ checkpoint |"
    )
    print("|---|---|---|---|---|---|")
    for name, tools in results.items():
        naive = tools["naive h5py load-all"][0]
        for tool, (wall, rss) in tools.items():
            print(
                f"| {name} ({sizes_mb[name]:.0f} MB) | {tool} | {wall:.2f} | "
                f"{wall / naive:.2f} | {rss:.0f} | {rss / sizes_mb[name]:.2f} |"
            )
    verdicts = []
    if "roberta-base" in results:
        base = results["roberta-base"]
        ratio = base["tf2pt convert --no-verify"][0] / base["naive h5py load-all"][0]
        rss = base["tf2pt convert --no-verify"][1] / sizes_mb["roberta-base"]
        verdicts += [
            ("wall ≤ 1.2× naive (roberta-base)", ratio <= 1.2, f"{ratio:.2f}×"),
            ("peak RSS ≤ 0.45× checkpoint (roberta-base)", rss <= 0.45, f"{rss:.2f}×"),
        ]
        out = CACHE / "roberta-base-verify"
        subprocess.run(
            [
                str(BIN / "tf2pt"),
                "convert",
                str(checkpoint("roberta-base")),
                str(out),
                "--no-verify",
                "--force",
            ],
            check=True,
            stderr=subprocess.DEVNULL,
        )
        verify = [str(BIN / "tf2pt"), "verify", str(checkpoint("roberta-base")), str(out)]
        tf_alone = [sys.executable, "-c", TF_ALONE, str(checkpoint("roberta-base"))]
        walls: dict[str, list[float]] = {"verify": [], "tf": []}
        for r in range(args.rounds):  # alternate who goes first
            pair = [("verify", verify), ("tf", tf_alone)]
            for key, argv in pair if r % 2 == 0 else pair[::-1]:
                walls[key].append(measure(argv)[0])
        wall, tf_wall = statistics.median(walls["verify"]), statistics.median(walls["tf"])
        verdicts.append(
            (
                "verify roberta-base ≤ 20 s (incl. the float64 noise pass)",
                wall <= 20,
                f"{wall:.1f} s; the TF half alone {tf_wall:.1f} s: {wall / tf_wall:.2f}×",
            )
        )
    if {"roberta-base", "roberta-large"} <= set(results):
        grow = (
            results["roberta-large"]["tf2pt convert --no-verify"][1]
            - results["roberta-base"]["tf2pt convert --no-verify"][1]
        )
        largest = 50265 * (1024 - 768) * 4 / 2**20  # word embeddings, the largest tensor
        verdicts.append(
            (
                "RSS growth base→large ≤ largest-tensor growth",
                grow <= largest,
                f"{grow:.0f} MB vs {largest:.0f} MB",
            )
        )
    if not args.no_savedmodel:
        verdicts += bench_saved_model(args.rounds)
    print()
    for what, ok, value in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {what}: {value}")
    return 0 if all(ok for _, ok, _ in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
