"""Conversion speed and memory, measured side by side in one run (`make bench`).

Builds roberta-base-, roberta-large- and XLM-R-large-sized (250,002 tokens, 24 × 1024)
TFRobertaForSequenceClassification checkpoints once (cached in .bench-cache/), then, alternating
the order on each round, times `tf2pt convert --no-verify`, the naive load-everything script, and
`cp` of the file, each as its own process, and reports the median wall time and the peak RSS of
each; what the durable publish's fsyncs cost, as convert reports them; then `tf2pt verify` on
every size against the TF reference alone (scripts/bench_verify.py): wall and CPU time ratios,
and peak memory of the whole process tree ÷ the float32 model; and the diagnosis a failing
verify runs on roberta-base (a config bug and a table-level weight bug injected into the converted
output) against a verify without it. Ratios, not absolute seconds,
are the result: they hold on any machine. A roberta-base-sized transformers SavedModel
(`saved_model/1`) measures the TF2 reader's peak RSS against its variables' size (the reader
needs no TensorFlow), next to what importing TensorFlow and opening the bundle with TF's own
reader alone costs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_verify import bench_verify, float32_size_mb  # noqa: E402
from bench_verify import measure as measure_tree  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".bench-cache"
# Where verify's converted models go (each is deleted after its rows): TF2PT_BENCH_OUT may put
# them on another file system (a 2.2 GB XLM-R-large-sized output on a nearly full disk).
OUTPUTS = Path(os.environ.get("TF2PT_BENCH_OUT", CACHE))
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


def _mutated(converted: Path, bug: str) -> Path:
    """A copy of the converted roberta-base with one bug a diagnosis should name."""
    import json

    from safetensors.numpy import load_file, save_file

    out = CACHE / f"roberta-base-{bug}"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(converted, out)
    if bug == "eps":  # the output config says 1e-12 where the model has 1e-5
        config = json.loads((out / "config.json").read_text())
        config["layer_norm_eps"] = 1e-12
        (out / "config.json").write_text(json.dumps(config))
    else:  # query and key exchanged in every layer, as a wrong table would
        tensors = load_file(str(out / "model.safetensors"))
        for i in range(SIZES["roberta-base"]["num_hidden_layers"]):
            for part in ("weight", "bias"):
                q = f"roberta.encoder.layer.{i}.attention.self.query.{part}"
                k = q.replace(".query.", ".key.")
                tensors[q], tensors[k] = tensors[k], tensors[q]
        save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


def bench_diagnosis(converted: Path, rounds: int, verify_wall: float) -> list:
    """A failing `tf2pt verify` with and without the diagnosis, on each injected bug: the
    diagnosis's own time (from parity_report.json) and the extra wall time it costs, against a
    passing verify's wall time."""
    import json

    verdicts = []
    src = str(checkpoint("roberta-base"))
    print("\n| roberta-base bug | diagnosis s | failing verify s | same, --no-diagnosis s | best |")
    print("|---|---|---|---|---|")
    for bug in ("eps", "swap"):
        out = _mutated(converted, bug)
        walls: dict[str, list[float]] = {"with": [], "without": []}
        seconds, best = [], ""
        for r in range(rounds):
            pair = [("with", []), ("without", ["--no-diagnosis"])]
            for key, extra in pair if r % 2 == 0 else pair[::-1]:
                walls[key].append(
                    measure([str(BIN / "tf2pt"), "verify", src, str(out), *extra], 1)[0]
                )
                if key == "with":
                    report = json.loads((out / "parity_report.json").read_text())
                    seconds.append(report["seconds"]["diagnosis"])
                    top = report["diagnosis"][0]
                    best = top["hypothesis"] if top["passes"] else "none passes"
        diag = statistics.median(seconds)
        with_, without = statistics.median(walls["with"]), statistics.median(walls["without"])
        print(f"| {bug} | {diag:.1f} | {with_:.1f} | {without:.1f} | {best} |")
        verdicts.append(
            (
                f"diagnosis ≤ one verify (roberta-base, {bug} bug)",
                diag <= verify_wall and best != "none passes",
                f"{diag:.1f} s vs verify {verify_wall:.1f} s ({diag / verify_wall:.2f}×)",
            )
        )
    return verdicts


def measure(argv: list[str], expect: int = 0) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != expect:
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


def convert_table(results: dict, sizes_mb: dict[str, float], rounds: int) -> list[tuple]:
    print(
        f"\n| checkpoint | tool | wall s (median of {rounds}) | × naive | peak RSS MB | "
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
    return verdicts


def durability_cost(name: str, rounds: int) -> list[tuple]:
    """What the fsyncs of a durable publish cost: the seconds `convert` reports for them, as a
    share of its wall time (measured on the same runs)."""
    out = CACHE / f"{name}-durable"
    argv = [str(BIN / "tf2pt"), "convert", str(checkpoint(name)), str(out), "--no-verify"]
    shares, flushes, walls = [], [], []
    for _ in range(rounds):
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
        found = re.search(r"flushed to disk in ([0-9.]+) s", done.stderr)
        if found is None:
            raise SystemExit(f"convert did not report its flush:\n{done.stderr}")
        flushes.append(float(found.group(1)))
        walls.append(wall)
        shares.append(flushes[-1] / wall)
    shutil.rmtree(out, ignore_errors=True)
    share = statistics.median(shares)
    print(
        f"\ndurable publish ({name}): fsync of every file, the staged directory and the parent "
        f"{statistics.median(flushes):.2f} s of a {statistics.median(walls):.2f} s convert "
        f"--no-verify ({share:.1%}, median of {rounds})"
    )
    return [(f"fsync ≤ 10% of convert --no-verify ({name})", share <= 0.10, f"{share:.1%}")]


def verify_table(names: list[str], rounds: int) -> list[tuple]:
    """tf2pt verify against the TF reference alone on each size (scripts/bench_verify.py)."""
    rows, converts, diagnosis_verdicts = {}, {}, []
    for name in names:
        out = OUTPUTS / f"{name}-verify"
        argv = [str(BIN / "tf2pt"), "convert", str(checkpoint(name)), str(out), "--no-verify"]
        converts[name] = measure_tree([*argv, "--force"])
        rows[name] = bench_verify(checkpoint(name), out, float32_size_mb(out), rounds)
        if name == "roberta-base":
            diagnosis_verdicts = bench_diagnosis(out, rounds, rows[name].verify.wall)
        shutil.rmtree(out)  # an XLM-R-large-sized output is 2.2 GB
    print(
        f"\n| checkpoint | float32 model MB | convert s | convert RSS × model | verify s | "
        f"TF alone s | wall × TF | CPU × TF | peak RSS (tree) × model | anonymous × model | "
        f"TF alone RSS × model |  (verify: median of {rounds}; memory: the maximum)"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    verdicts = []
    for name, r in rows.items():
        c = converts[name]
        print(
            f"| {name} | {r.model_mb:.0f} | {c.wall:.1f} | {c.tree_mb / r.model_mb:.2f} | "
            f"{r.verify.wall:.1f} | {r.tf_alone.wall:.1f} | {r.wall_ratio:.2f} | "
            f"{r.cpu_ratio:.2f} | {r.memory_ratio:.2f} | {r.anon_ratio:.2f} | "
            f"{r.tf_alone.tree_mb / r.model_mb:.2f} |"
        )
        verdicts.append(
            (
                f"verify ≤ 1.2× the TF reference alone ({name})",
                r.wall_ratio <= 1.2,
                f"{r.wall_ratio:.2f}× wall, {r.cpu_ratio:.2f}× CPU",
            )
        )
        if name != "roberta-base":  # TensorFlow's own ~1 GB dwarfs a base model
            verdicts.append(
                (
                    f"verify's anonymous memory ≤ 3× the float32 model ({name})",
                    r.anon_ratio <= 3,
                    f"{r.anon_ratio:.2f}× (RSS incl. mapped files {r.memory_ratio:.2f}×)",
                )
            )
    return verdicts + diagnosis_verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", nargs="*", default=list(SIZES))
    parser.add_argument("--verify-sizes", nargs="*", default=list(SIZES))
    parser.add_argument(
        "--durable-size", default="roberta-large", help="the checkpoint whose fsyncs are timed"
    )
    parser.add_argument("--no-savedmodel", action="store_true", help="skip the SavedModel case")
    args = parser.parse_args()
    results, sizes_mb = {}, {}
    for name in args.sizes:
        results[name] = bench_size(name, args.rounds)
        sizes_mb[name] = (CACHE / name / "tf_model.h5").stat().st_size / 1e6
    verdicts = convert_table(results, sizes_mb, args.rounds)
    if args.durable_size:
        verdicts += durability_cost(args.durable_size, args.rounds)
    verdicts += verify_table(args.verify_sizes, args.rounds)
    if not args.no_savedmodel:
        verdicts += bench_saved_model(args.rounds)
    print()
    for what, ok, value in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {what}: {value}")
    return 0 if all(ok for _, ok, _ in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
