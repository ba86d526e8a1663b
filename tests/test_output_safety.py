"""Output safety: killed runs leave nothing the next run does not clean, concurrent runs never
replace each other's output, and a full disk or unwritable location fails cleanly."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from converter.errors import UsageError
from converter.write import staging
from converter.write.staging import PAUSE_ENV, StagedOutput

from .conftest import read_json, run_cli, staging_leftovers

TF2PT = str(Path(sys.executable).parent / "tf2pt")
KILL_POINTS = ["before-header", "mid-tensor", "after-tensors", "before-rename"]


def _assert_one_line_failure(code: int, err: str, expected_code: int, *fragments: str) -> None:
    assert code == expected_code, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("tf2pt: error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in last, last


def _start(src: Path, out: Path, *extra: str, pause_at: str | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop(PAUSE_ENV, None)
    if pause_at:
        env[PAUSE_ENV] = pause_at
    return subprocess.Popen(
        [TF2PT, "convert", str(src), str(out), "--no-verify", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_until_stopped(proc: subprocess.Popen, timeout: float = 60) -> None:
    """Until the process has stopped itself at its pause point (state T in /proc)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "T":
            return
        time.sleep(0.02)
    raise AssertionError("the run never reached its pause point")


def _hidden_siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def reference(tf_checkpoints, tmp_path_factory) -> dict[str, Path]:
    """Clean conversions (no kill, no race) of two different sources, to compare against."""
    root = tmp_path_factory.mktemp("reference")
    outs = {}
    for head in ("sequence-classification", "base-model"):
        code, _, err = run_cli(
            ["convert", str(tf_checkpoints[head]), str(root / head), "--no-verify"]
        )
        assert code == 0, err
        outs[head] = root / head
    return outs


def _same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names
    )


@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_at_each_write_stage_is_swept_by_the_next_run(
    point, tmp_path, tf_checkpoints, reference
):
    src = tf_checkpoints["sequence-classification"]
    out = tmp_path / "out"
    killed = _start(src, out, pause_at=point)
    _wait_until_stopped(killed)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=30)
    partial = f".out.tf2pt-partial-{killed.pid}"
    assert not out.exists()
    assert partial in _hidden_siblings(out)  # what a crash leaves (the lock file may stay too)

    rerun = _start(src, out)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert f"removed {out.parent / partial}" in err
    assert _hidden_siblings(out) == []
    assert _same_files(out, reference["sequence-classification"])


def test_two_runs_started_together_exactly_one_publishes(tmp_path, tf_checkpoints, reference):
    out = tmp_path / "out"
    heads = ("sequence-classification", "base-model")
    runs = [_start(tf_checkpoints[h], out) for h in heads]
    results = [(r.wait(timeout=120), r.communicate()[1]) for r in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    winner = next(h for h, (code, _) in zip(heads, results, strict=True) if code == 0)
    loser_err = next(err for code, err in results if code == 2)
    last = loser_err.strip().splitlines()[-1]
    assert last.startswith(f"tf2pt: error: {out}: ") and "Traceback" not in loser_err
    assert "another tf2pt run" in last or "output already exists" in last, last
    assert _same_files(out, reference[winner])
    assert _hidden_siblings(out) == []


def test_a_second_run_with_force_is_refused_while_the_first_is_publishing(
    tmp_path, tf_checkpoints, reference
):
    out = tmp_path / "out"
    first = _start(
        tf_checkpoints["sequence-classification"], out, "--force", pause_at="before-rename"
    )
    _wait_until_stopped(first)
    second = _start(tf_checkpoints["base-model"], out, "--force")
    _, err = second.communicate(timeout=120)
    _assert_one_line_failure(
        second.returncode, err, 2, f"another tf2pt run (PID {first.pid}) is writing this output"
    )
    first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert _same_files(out, reference["sequence-classification"])  # every file from one run
    assert _hidden_siblings(out) == []


@pytest.fixture(params=["renameat2", "plain-rename"])
def rename_mode(request, monkeypatch):
    """Both publishing paths: renameat2 flags, and the fallback where the system lacks them."""
    if request.param == "plain-rename":
        monkeypatch.setattr(staging, "_rename_with_flags", lambda src, dst, flags: False)
    elif staging._renameat2() is None:
        pytest.fail("renameat2 is unavailable here; the fallback alone is tested")
    return request.param


def _stage(out: Path, files: dict[str, str], force: bool = False) -> StagedOutput:
    staged = StagedOutput(out, force).__enter__()
    for name, text in files.items():
        (staged.path / name).write_text(text)
    return staged


def test_commit_never_replaces_an_output_that_appeared_meanwhile(tmp_path, rename_mode):
    out = tmp_path / "out"
    staged = _stage(out, {"model.safetensors": "new"})
    out.mkdir()  # another program creates OUT while we convert (empty: rename(2) would replace it)
    with pytest.raises(UsageError, match="output appeared while converting"):
        staged.commit()
    staged.__exit__(UsageError, None, None)
    assert list(out.iterdir()) == [] and _hidden_siblings(out) == []


def test_force_commit_replaces_the_whole_directory_at_once(tmp_path, rename_mode):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_text("old")
    (out / "only-in-old.txt").write_text("old")
    staged = _stage(out, {"model.safetensors": "new", "config.json": "new"}, force=True)
    staged.commit()
    staged.__exit__(None, None, None)
    assert {p.name: p.read_text() for p in out.iterdir()} == {
        "model.safetensors": "new",
        "config.json": "new",
    }
    assert _hidden_siblings(out) == []


def test_set_aside_publishes_beside_out_replacing_an_earlier_one(tmp_path, rename_mode):
    out = tmp_path / "out"
    earlier = tmp_path / "out.parity-failed"
    earlier.mkdir()
    (earlier / "parity_report.json").write_text("earlier")
    (earlier / "only-in-earlier.txt").write_text("earlier")
    staged = _stage(out, {"parity_report.json": "now", "model.safetensors": "now"})
    assert staged.set_aside() == earlier
    staged.__exit__(None, None, None)
    assert not out.exists()
    assert {p.name: p.read_text() for p in earlier.iterdir()} == {
        "parity_report.json": "now",
        "model.safetensors": "now",
    }
    assert _hidden_siblings(out) == []


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_sweep_removes_dead_runs_dirs_and_never_a_live_runs(tmp_path, tf_checkpoints):
    out = tmp_path / "out"
    live_tf2pt = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "tf2pt", "convert"]
    )
    reused_pid = subprocess.Popen(["sleep", "60"])  # a PID now held by some other program
    dead = _dead_pid()
    try:
        dirs = {
            "dead": tmp_path / f".out.tf2pt-partial-{dead}",
            "dead-replaced": tmp_path / f".out.tf2pt-replaced-{dead}",
            "reused": tmp_path / f".out.tf2pt-partial-{reused_pid.pid}",
            "live": tmp_path / f".out.tf2pt-partial-{live_tf2pt.pid}",
            "other-output": tmp_path / f".other.tf2pt-partial-{dead}",
        }
        for d in dirs.values():
            d.mkdir()
            (d / "model.safetensors").write_bytes(b"x" * 1000)
        code, _, err = run_cli(
            ["convert", str(tf_checkpoints["base-model"]), str(out), "--no-verify"]
        )
        assert code == 0, err
        for kind in ("dead", "dead-replaced", "reused"):
            assert not dirs[kind].exists()
            assert f"removed {dirs[kind]}" in err
        assert dirs["live"].exists() and dirs["other-output"].exists()  # not this output's

        code, _, err = run_cli(["sweep", str(tmp_path)])  # what make convert-all runs
        assert code == 0, err
        assert f"removed {dirs['other-output']}" in err and not dirs["other-output"].exists()
        assert dirs["live"].exists()
    finally:
        live_tf2pt.kill()
        reused_pid.kill()
        live_tf2pt.wait()
        reused_pid.wait()


class _FailingFile:
    """A file whose writes fail with `error` once `allowed` bytes were written."""

    def __init__(self, real, allowed: int, error: int):
        self.real, self.allowed, self.error = real, allowed, error

    def write(self, data) -> int:
        size = memoryview(data).nbytes
        if size > self.allowed:
            raise OSError(self.error, os.strerror(self.error))
        self.allowed -= size
        return self.real.write(data)

    def __getattr__(self, name):
        return getattr(self.real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.real.close()


def _fail_tensor_file_after(allowed: int, error: int):
    """The tensor file's writes fail after `allowed` bytes (None: opening it fails)."""

    def install(monkeypatch):
        from converter.write import model_files as writer

        def failing_open(path, mode="r", *args, **kwargs):
            if allowed is None:
                raise OSError(error, os.strerror(error), str(path))
            return _FailingFile(open(path, mode, *args, **kwargs), allowed, error)

        monkeypatch.setattr(writer, "open", failing_open, raising=False)

    return install


def _fail_config_json(monkeypatch):
    from converter import pipeline as convert_module

    real = convert_module.write_json

    def failing(path, data):
        if path.name == "config.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(convert_module, "write_json", failing)


def _fail_publishing_rename(monkeypatch):
    def failing(src, dst, flags):
        raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(dst))

    monkeypatch.setattr(staging, "_rename_with_flags", failing)


WRITE_FAILURES = {
    "tensor-file-not-creatable": (_fail_tensor_file_after(None, errno.EACCES), "Permission denied"),
    "full-before-header": (_fail_tensor_file_after(0, errno.ENOSPC), "No space left"),
    "full-mid-tensor": (_fail_tensor_file_after(4000, errno.ENOSPC), "No space left"),
    "full-at-config": (_fail_config_json, "No space left"),
    "rename-refused": (_fail_publishing_rename, "Permission denied"),
}


@pytest.mark.parametrize("point", WRITE_FAILURES)
def test_injected_write_failure_is_one_line_exit_2_and_leaves_nothing(
    point, tmp_path, tf_checkpoints, monkeypatch
):
    install, message = WRITE_FAILURES[point]
    install(monkeypatch)
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(tf_checkpoints["base-model"]), str(out), "--no-verify"])
    _assert_one_line_failure(code, err, 2, f"{out}: cannot write the output ({message}")
    assert not out.exists() and not staging_leftovers(out)


@pytest.fixture
def small_tmpfs(tmp_path):
    """Mount a size-limited tmpfs (needs root); yields a function that sets its size."""
    mount = tmp_path / "disk"
    mount.mkdir()
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tf2pt-test", str(mount)])
    if os.geteuid() != 0 or ok.returncode != 0:
        pytest.skip("mounting a tmpfs needs root; the injected failures above cover ENOSPC")

    def resize(size: int) -> Path:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(mount)], check=True)
        return mount

    yield resize
    subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_fails_cleanly_wherever_the_space_runs_out(
    small_tmpfs, tf_checkpoints, reference
):
    ref = reference["base-model"]
    tensors = (ref / "model.safetensors").stat().st_size
    page = 4096
    # Room for: almost nothing, half the tensor file, the tensor file but not the reports.
    for size in (page, tensors // 2, tensors + page):
        disk = small_tmpfs(size)
        out = disk / "out"
        code, _, err = run_cli(
            ["convert", str(tf_checkpoints["base-model"]), str(out), "--no-verify"]
        )
        _assert_one_line_failure(
            code, err, 2, f"{out}: cannot write the output (No space left on device"
        )
        assert list(disk.iterdir()) == [], size
    disk = small_tmpfs(sum(p.stat().st_size for p in ref.iterdir()) + 16 * page)
    code, _, err = run_cli(
        ["convert", str(tf_checkpoints["base-model"]), str(disk / "out"), "--no-verify"]
    )
    assert code == 0, err  # the same conversion fits when there is room
    assert read_json(disk / "out" / "config.json") == read_json(ref / "config.json")


def test_doctor_fix_sweeps_what_a_killed_fix_left(tmp_path, reference):
    fixed = tmp_path / "fixed"
    stale = tmp_path / f".fixed.tf2pt-partial-{_dead_pid()}"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"x" * 1000)
    ckpt = reference["sequence-classification"] / "model.safetensors"
    code, _, err = run_cli(["doctor", str(ckpt), "--fix", str(fixed)])
    assert code == 0, err
    assert f"removed {stale}" in err
    assert (fixed / "model.safetensors").exists() and _hidden_siblings(fixed) == []


def test_set_aside_replaces_a_file_in_the_way(tmp_path, rename_mode):
    out = tmp_path / "out"
    (tmp_path / "out.parity-failed").write_text("a file, not a directory")
    staged = _stage(out, {"parity_report.json": "now"})
    dest = staged.set_aside()
    staged.__exit__(None, None, None)
    assert [p.name for p in dest.iterdir()] == ["parity_report.json"]
    assert _hidden_siblings(out) == []


def test_a_file_system_without_locks_still_publishes_without_replacing(tmp_path, monkeypatch):
    import fcntl

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    out = tmp_path / "out"
    staged = _stage(out, {"model.safetensors": "new"})
    staged.commit()
    staged.__exit__(None, None, None)
    assert (out / "model.safetensors").read_text() == "new" and _hidden_siblings(out) == []
    staged = _stage(tmp_path / "other", {"model.safetensors": "newer"})
    staged.final = out  # as if OUT appeared after this run's start
    with pytest.raises(UsageError, match="output appeared while converting"):
        staged.commit()
    staged.__exit__(UsageError, None, None)
    assert (out / "model.safetensors").read_text() == "new" and _hidden_siblings(out) == []
