"""transformers 5, driven from the tests through one long-lived process of `.venv-hf5`.

transformers 5 cannot share a venv with the TF classes (it removed them), so `make install`
builds a second small venv (torch + transformers 5). Starting its Python with torch and
transformers costs seconds, and the tests that prove converted output loads there would start
one per check. `Hf5.run(script, *args)` runs a script as `python -c script args…` would — the
same exit code, stdout and stderr, a fresh namespace each time — in one process started on the
first call and kept until the session ends.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
from pathlib import Path

HF5_PYTHON = Path(
    os.environ.get("TF2PT_HF5_PYTHON", Path(__file__).resolve().parents[1] / ".venv-hf5/bin/python")
)

# Reads one JSON request a line, runs its script as `python -c` would, answers one JSON line on
# a copy of fd 1; fd 1 itself then goes to stderr, so nothing a library writes there can
# corrupt the answers.
SERVER = r"""
import contextlib, io, json, os, sys, traceback
answers = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
for line in sys.stdin:
    request = json.loads(line)
    out, err, code = io.StringIO(), io.StringIO(), 0
    sys.argv = ["-c", *request["args"]]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            exec(compile(request["script"], "<string>", "exec"), {"__name__": "__main__"})
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except BaseException:
            traceback.print_exc()
            code = 1
    answers.write(json.dumps({"code": code, "out": out.getvalue(), "err": err.getvalue()}))
    answers.write("\n")
    answers.flush()
"""


class Hf5:
    """`python -c` in `.venv-hf5`, one process for many scripts."""

    def __init__(self, log: Path, python: Path = HF5_PYTHON):
        assert python.exists(), f"{python} is missing: run `make install`"
        self.python = python
        self.log = log  # the process's own stderr, said if it dies
        self.process: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        with open(self.log, "a") as log:
            return subprocess.Popen(
                [str(self.python), "-c", SERVER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )

    def run(self, script: str, *args: object, timeout: float = 300) -> subprocess.CompletedProcess:
        """What `subprocess.run([python, "-c", script, *args], capture_output=True, text=True)`
        returns, from the shared process."""
        if self.process is None or self.process.poll() is not None:
            self.process = self._start()
        argv = [str(a) for a in args]
        self.process.stdin.write(json.dumps({"script": script, "args": argv}) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        answer = self.process.stdout.readline() if ready else ""
        if not answer:  # died or hung: the next call starts a fresh process
            self.process.kill()
            self.process.wait()
            said = self.log.read_text()[-4000:]
            raise AssertionError(f"the transformers 5 process gave no answer:\n{said}")
        reply = json.loads(answer)
        command = [str(self.python), "-c", script, *argv]
        return subprocess.CompletedProcess(command, reply["code"], reply["out"], reply["err"])

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
