"""The PyTorch half of a parity check: the converted model in the dtype its weights are stored in
(the candidate run: float32, float16 or bfloat16), and again in float64.

The candidate run is what is compared with the TF model; the float64 run measures that dtype's
rounding noise on each output (gate.py), on the same loaded model (float64_pass.py). In a `tf2pt`
process that has not imported torch yet, this half runs in a spawned child, so importing torch
and transformers and the forward passes overlap with TensorFlow's import, build and forward pass
in the parent, and the parent never imports torch at all: that pays for the float64 pass. Where
torch is already imported (tests) or the process is not ours to reconfigure (the Python API in a
notebook) it runs in-process.

The model stays loaded after its runs, so a failed check can try hypotheses on it (diagnosis.py,
trials.py) without loading anything again: the child waits for such a request until the parent
closes it.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import sys
import time
import traceback
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import errors
from ..errors import ParityError, Tf2ptError
from .float64_pass import float64_pass
from .inputs import Batch
from .runners import Outputs, loading_problems, ordered_outputs, quiet_transformers

# numpy has no bfloat16: a half-precision run's outputs travel as float32, which holds them exactly.
NUMPY_CARRIER = {"bfloat16": "float32", "float16": "float32"}


@dataclass
class TorchRuns:
    """Outputs of the converted model per batch: in its own dtype (`precision`), and in float64."""

    candidate: list[Outputs]
    float64: list[Outputs]
    seconds: float
    precision: str = "float32"


class TorchRunner:
    """The converted model, loaded strictly from the output directory alone."""

    framework = "pytorch"

    def __init__(
        self,
        out_dir: Path,
        class_name: str,
        precision: str = "float32",
        ties: tuple[tuple[str, str], ...] = (),
    ):
        import torch
        import transformers

        torch.manual_seed(0)
        quiet_transformers()
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        self.torch = torch
        self.numpy_dtype = np.dtype(NUMPY_CARRIER.get(precision, precision))
        cls = getattr(transformers, class_name)
        self.model, info = cls.from_pretrained(
            str(out_dir), output_loading_info=True, torch_dtype=getattr(torch, precision)
        )
        problems = loading_problems(info)
        on_meta = [n for n, p in self.model.named_parameters() if p.device.type == "meta"]
        if on_meta:
            problems.append(f"parameters left on the meta device: {on_meta[:5]}")
        untied = [f"{a} is not {b}" for a, b in ties if not _shared(self.model, a, b)]
        if untied:
            problems.append(f"ties the conversion relies on do not hold: {untied[:5]}")
        if problems:
            raise ParityError(
                "the converted model does not load strictly: " + "; ".join(problems), out_dir
            )
        self.model.eval()

    def run(self, batch: Batch, float64: bool = False) -> Outputs:
        """The outputs on `batch`, in the model's dtype, or with `float64` computed in float64."""
        torch = self.torch
        feed = {k: torch.from_numpy(v.astype(np.int64)) for k, v in batch.as_dict().items()}
        # Tensors the model creates on the fly take the default dtype: transformers 4.57 fills
        # a causal mask with float64's minimum through torch.full without a dtype, which
        # overflows float32 (BertLMHeadModel, RobertaForCausalLM). Half precisions cannot be
        # the default dtype; their masks follow the model's own dtype.
        default = torch.get_default_dtype()
        computed = torch.float64 if float64 else self.model.dtype
        if computed in (torch.float32, torch.float64):
            torch.set_default_dtype(computed)
        carrier = getattr(torch, "float64" if float64 else self.numpy_dtype.name)
        try:
            with torch.no_grad(), float64_pass(self.model) if float64 else nullcontext():
                result = self.model(**feed, output_hidden_states=True, return_dict=True)
        finally:
            torch.set_default_dtype(default)
        return ordered_outputs(result, lambda t: t.detach().to(carrier).numpy())


def _shared(model, name: str, partner: str) -> bool:
    """Whether the loaded model holds `name` and `partner` as one tensor (a tied parameter is
    written once: were the tie not made, the other would keep its random initial values)."""
    try:
        return model.get_parameter(name).data_ptr() == model.get_parameter(partner).data_ptr()
    except AttributeError:
        return False


def run_converted(
    out_dir: Path,
    class_name: str,
    batches: list[Batch],
    before_each=lambda: None,
    precision: str = "float32",
    ties: tuple[tuple[str, str], ...] = (),
) -> tuple[TorchRuns, TorchRunner]:
    """The model loaded once in `precision` (its stored dtype), run on every batch in it, then
    in float64; and the runner, kept for a diagnosis. `before_each` runs before the load and each
    forward pass (the child adjusts its threads)."""
    start = time.perf_counter()
    before_each()
    runner = TorchRunner(out_dir, class_name, precision, ties)
    runs: dict[bool, list[Outputs]] = {False: [], True: []}
    for float64 in (False, True):
        for batch in batches:
            before_each()
            runs[float64].append(runner.run(batch, float64))
    seconds = round(time.perf_counter() - start, 3)
    return TorchRuns(runs[False], runs[True], seconds, precision), runner


def _answer(connection, work) -> None:
    """Send `work()`'s result, or the expected error, or the traceback of a bug."""
    try:
        connection.send(("ok", work()))
    except Tf2ptError as exc:
        connection.send(("error", (type(exc).__name__, exc.what, exc.path, exc.hint)))
    except BaseException:  # a bug: the parent re-raises it with this traceback
        connection.send(("crash", traceback.format_exc()))


def _child(
    connection,
    alone,
    out_dir: Path,
    class_name: str,
    batches: list[Batch],
    precision: str,
    ties: tuple[tuple[str, str], ...],
) -> None:
    """Entry point of the spawned process: send back the runs or the error, never raise; then
    answer trial requests on the kept model until the parent hangs up.

    It computes on one core while the parent runs TensorFlow on the other(s), and on all of
    them once the parent has finished and is waiting (`alone` is set): two processes each
    asking for every core run slower than one after the other."""
    os.environ.update(USE_TF="0", USE_TORCH="1")  # the parent's choices are not ours
    kept: list[tuple[TorchRunner, TorchRuns]] = []
    try:
        import torch

        share = torch.get_num_threads()
        torch.set_num_threads(1)

        def threads() -> None:
            if alone.is_set():
                torch.set_num_threads(share)

        def runs() -> TorchRuns:
            result, runner = run_converted(out_dir, class_name, batches, threads, precision, ties)
            kept.append((runner, result))
            return result

        _answer(connection, runs)
        while kept:
            request = connection.recv()
            threads()
            _answer(connection, functools.partial(_trials, *kept[0], batches, request))
    except (EOFError, OSError):  # the parent closed the pipe: nothing more to do
        pass
    finally:
        connection.close()


def _trials(runner: TorchRunner, runs: TorchRuns, batches: list[Batch], request):
    from .trials import run_trials

    return run_trials(runner.model, batches, runs.candidate, request)


class TorchSide:
    """Starts the PyTorch half and hands back its runs, then runs trials on the kept
    model until closed. With `own_process` (the CLI: this process is only ours) and torch not
    imported yet, it runs in a child, and this process tells transformers to leave torch alone:
    importing it here would cost seconds for nothing."""

    def __init__(
        self,
        out_dir: Path,
        class_name: str,
        batches: list[Batch],
        own_process: bool,
        precision: str = "float32",
        ties: tuple[tuple[str, str], ...] = (),
    ):
        self.args = (out_dir, class_name, batches)
        self.precision, self.ties = precision, ties
        self.process: Any = None
        self.kept: tuple[TorchRunner, TorchRuns] | None = None  # in-process: the model, its runs
        if own_process and "torch" not in sys.modules:
            if "transformers" not in sys.modules:
                os.environ.setdefault("USE_TORCH", "0")
            context = multiprocessing.get_context("spawn")
            self.connection, child_end = context.Pipe(duplex=True)
            self.alone = context.Event()
            self.process = context.Process(
                target=_child,
                args=(child_end, self.alone, *self.args, precision, ties),
                daemon=True,
            )
            self.process.start()
            child_end.close()

    def result(self) -> TorchRuns:
        if self.process is None:
            runs, runner = run_converted(*self.args, precision=self.precision, ties=self.ties)
            self.kept = (runner, runs)
            return runs
        self.alone.set()
        try:
            return self._receive()
        except BaseException:
            self.close()
            raise

    def try_trials(self, request):
        """Run a diagnosis's trials (trials.TrialRequest) on the kept model."""
        if self.process is None:
            return _trials(*self.kept, self.args[2], request)
        self.connection.send(request)
        return self._receive()

    def _receive(self):
        try:
            status, payload = self.connection.recv()
        except EOFError:
            self.process.join()
            raise ParityError(
                f"the PyTorch side of the parity check died (exit code {self.process.exitcode})",
                self.args[0],
                "out of memory? try again with fewer processes running",
            ) from None
        if status == "ok":
            return payload
        if status == "error":
            kind, what, path, hint = payload
            raise getattr(errors, kind, ParityError)(what, path, hint)
        raise RuntimeError(f"the PyTorch side of the parity check failed:\n{payload}")

    def close(self) -> None:
        """Stop the child (waiting for trials, or still running after an error or interrupt on
        the TF side) and free the kept model."""
        self.kept = None
        if self.process is not None and self.process.is_alive():
            self.process.terminate()
        if self.process is not None:
            self.process.join()
