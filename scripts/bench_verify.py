"""`tf2pt verify` measured against its floor, the TF reference alone, on one checkpoint.

Both are run as their own processes, alternating which goes first, and the result is ratios:
verify's wall time ÷ the TF reference's (import, build, forward on the parity batch), and the
peak memory of verify's whole process tree (the TF parent plus the PyTorch child, summed, sampled
every 50 ms) ÷ the float32 model's size. Used by bench.py; runnable alone:

    python scripts/bench_verify.py SRC OUT [--rounds N]   # OUT: a converted model of SRC
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
PAGE = os.sysconf("SC_PAGE_SIZE")

# The floor of `tf2pt verify`: the TF half alone (import, build, forward on the parity batch).
TF_ALONE = """
import os, sys
os.environ.update(TF_CPP_MIN_LOG_LEVEL="3", USE_TORCH="0")
from converter.plan.analysis import analyse
from converter.verify.inputs import make_inputs
from converter.verify.runners import declared_runner
analysis = analyse(sys.argv[1])
plan = analysis.plan
inputs = make_inputs(plan.dims, plan.table.position_offset)
runner = declared_runner(plan)(analysis.source, plan)
[runner.run(batch) for batch in inputs.batches]
"""


@dataclass(frozen=True)
class Run:
    wall: float  # seconds
    tree_mb: float  # peak of the summed RSS of the process and its descendants (sampled)
    anon_mb: float  # the same for anonymous memory only (RSS less file-backed pages: the
    # libraries and the mapped model file, which are page cache the kernel can reclaim)
    largest_mb: float  # peak RSS of the largest single process (the kernel's own count)
    cpu: float  # user + system seconds of the process and the children it waited for


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                parent = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(parent, []).append(int(entry))
    return tree


def tree_rss_mb(root: int) -> tuple[float, float]:
    """The summed resident memory of `root` and all its descendants now: all of it, and its
    anonymous part (statm's resident less shared, i.e. less file-backed pages)."""
    tree = _children()
    total, anon, todo = 0, 0, [root]
    while todo:
        pid = todo.pop()
        todo += tree.get(pid, [])
        try:
            with open(f"/proc/{pid}/statm") as fh:
                fields = fh.read().split()
            total += int(fields[1]) * PAGE
            anon += (int(fields[1]) - int(fields[2])) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e6, anon / 1e6


def measure(argv: list[str], env: dict[str, str] | None = None) -> Run:
    """Wall seconds and peak memory of one command and the processes it starts."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env or os.environ.copy()
    )
    peak = [0.0, 0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            now = tree_rss_mb(proc.pid)
            peak[:] = [max(p, n) for p, n in zip(peak, now, strict=True)]

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    err = proc.stderr.read().decode() if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(argv)}\n{err}")
    cpu = usage.ru_utime + usage.ru_stime
    return Run(wall, peak[0], peak[1], usage.ru_maxrss / 1024, cpu)


@dataclass(frozen=True)
class VerifyBench:
    verify: Run  # medians of wall, maxima of memory
    tf_alone: Run
    model_mb: float  # the float32 model's size

    @property
    def wall_ratio(self) -> float:
        return self.verify.wall / self.tf_alone.wall

    @property
    def cpu_ratio(self) -> float:
        return self.verify.cpu / self.tf_alone.cpu

    @property
    def memory_ratio(self) -> float:
        return self.verify.tree_mb / self.model_mb

    @property
    def anon_ratio(self) -> float:
        return self.verify.anon_mb / self.model_mb


def _summary(runs: list[Run]) -> Run:
    return Run(
        statistics.median(r.wall for r in runs),
        max(r.tree_mb for r in runs),
        max(r.anon_mb for r in runs),
        max(r.largest_mb for r in runs),
        statistics.median(r.cpu for r in runs),
    )


def bench_verify(src: Path, out: Path, model_mb: float, rounds: int) -> VerifyBench:
    """`tf2pt verify SRC OUT` and the TF reference alone, `rounds` times each, alternating."""
    commands = {
        "verify": [str(BIN / "tf2pt"), "verify", str(src), str(out)],
        "tf": [sys.executable, "-c", TF_ALONE, str(src)],
    }
    runs: dict[str, list[Run]] = {"verify": [], "tf": []}
    for r in range(rounds):
        order = list(commands) if r % 2 == 0 else list(commands)[::-1]
        for key in order:
            runs[key].append(measure(commands[key]))
    return VerifyBench(_summary(runs["verify"]), _summary(runs["tf"]), model_mb)


def float32_size_mb(out: Path) -> float:
    """The model's size in float32: its parameter count × 4 bytes, from the safetensors headers."""
    import json
    import struct

    count = 0
    for shard in out.glob("*.safetensors"):
        with open(shard, "rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(length))
        for name, entry in header.items():
            if name != "__metadata__":
                n = 1
                for d in entry["shape"]:
                    n *= d
                count += n
    return count * 4 / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result = bench_verify(args.src, args.out, float32_size_mb(args.out), args.rounds)
    print(
        f"verify {result.verify.wall:.1f} s, TF alone {result.tf_alone.wall:.1f} s: "
        f"{result.wall_ratio:.2f}× (CPU {result.verify.cpu:.1f} s vs {result.tf_alone.cpu:.1f} s: "
        f"{result.cpu_ratio:.2f}×); peak memory {result.verify.tree_mb:.0f} MB (tree), "
        f"{result.verify.anon_mb:.0f} MB anonymous ({result.anon_ratio:.2f}×), "
        f"{result.verify.largest_mb:.0f} MB (largest process); float32 model "
        f"{result.model_mb:.0f} MB: {result.memory_ratio:.2f}×; TF alone peak "
        f"{result.tf_alone.tree_mb:.0f} MB, {result.tf_alone.anon_mb:.0f} MB anonymous"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
