"""An output directory that appears whole or not at all, and never replaces anything by surprise.

A run writes into the hidden sibling `.NAME.tf2pt-partial-PID/` while holding the lock file
`.NAME.tf2pt-lock` (an exclusive `flock`, released by the kernel even on SIGKILL), then publishes
with one rename: `renameat2(RENAME_NOREPLACE)` without `--force`, `RENAME_EXCHANGE` with it, so
OUT is at every instant absent, the old output or the new one, never a mix; and durably: the
staged files and directories are flushed to disk before the rename and the parent directory after
it (write/durable.py), so a power cut cannot leave a published OUT empty or torn. A run also
sweeps what killed runs left beside its output (see `sweep_stale`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import re
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

from ..errors import OutputError, UsageError
from .durable import Flushed, fsync_path, fsync_tree

Progress = Callable[[str], None]

PARTIAL = "partial"
REPLACED = "replaced"
LOCK_SUFFIX = ".tf2pt-lock"
STALE_NAME = re.compile(r"\.(?P<name>.+)\.tf2pt-(?P<kind>partial|replaced)-(?P<pid>\d+)")
# Words in /proc/PID/cmdline that make a live process one of ours: the console script, or
# `python -m converter…` / an embedding that imports the package.
TF2PT_COMMAND_WORDS = (b"tf2pt", b"converter")

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
AT_FDCWD = -100
# renameat2 answers these when the kernel or the filesystem lacks the flag: fall back.
UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}

# flock answers these on file systems without locks (some network mounts).
NO_LOCKS = {errno.ENOLCK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EINVAL}

# An OSError while writing, by errno: what to tell the user to do.
WRITE_FAILURE_HINTS = {
    errno.ENOSPC: "free some space or choose another location",
    errno.EDQUOT: "free some space (disk quota exceeded) or choose another location",
    errno.EFBIG: "the file system or a limit caps file size; choose another location",
    errno.EACCES: "choose a writable location",
    errno.EPERM: "choose a writable location",
    errno.EROFS: "choose a writable location (this one is read-only)",
    errno.EIO: "check the disk, or choose another location",
}

PAUSE_ENV = "TF2PT_TEST_PAUSE_AT"


def pause_point(point: str) -> None:
    """Test hook: stop this process (SIGSTOP) at `point` when TF2PT_TEST_PAUSE_AT names it.

    Lets tests SIGKILL a real `tf2pt convert` at an exact stage of writing (tests/
    test_output_safety.py). Points: before-header, mid-tensor, after-tensors, before-rename.
    Unset (every normal run), it costs one environment lookup.
    """
    if os.environ.get(PAUSE_ENV) == point:
        os.kill(os.getpid(), signal.SIGSTOP)


@functools.cache
def _renameat2() -> Callable | None:
    try:
        return ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not glibc ≥ 2.28 / not Linux
        return None


def _rename_with_flags(src: Path, dst: Path, flags: int) -> bool:
    """renameat2(src, dst, flags); False when this system or file system lacks it."""
    call = _renameat2()
    if call is None:
        return False
    if call(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in UNSUPPORTED:
        return False
    raise OSError(err, os.strerror(err), str(dst))


def publish(staged: Path, dest: Path, replace: bool, aside: Path) -> Flushed:
    """Flush `staged` to disk, rename it to `dest` (`_rename_into_place`), flush the parent."""
    flushed = fsync_tree(staged)
    pause_point("before-rename")
    _rename_into_place(staged, dest, replace, aside)
    fsync_path(dest.parent)
    return flushed


def _rename_into_place(staged: Path, dest: Path, replace: bool, aside: Path) -> None:
    """Rename the directory `staged` to `dest` in one step.

    Without `replace` an existing `dest` is never touched (FileExistsError). With it, `dest` is
    swapped atomically, and the old content (now at `staged`) deleted. Where renameat2 is missing,
    a plain rename (or rename aside, rename in) does the same among tf2pt runs, which the lock
    serialises.
    """
    try:
        if _rename_with_flags(staged, dest, RENAME_NOREPLACE):
            return
        fallback = True
    except FileExistsError:
        if not replace:
            raise
        fallback = False
    if fallback and not os.path.lexists(dest):
        os.rename(staged, dest)
        return
    if not replace:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dest))
    if _rename_with_flags(staged, dest, RENAME_EXCHANGE):
        _remove(staged)  # the old output
        return
    os.rename(dest, aside)
    try:
        os.rename(staged, dest)
    except OSError:
        os.rename(aside, dest)  # put the old output back
        raise
    _remove(aside)


def _remove(path: Path) -> None:
    """Delete what an output path held: a directory tree, or a file or symlink in its place."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _is_live_tf2pt(pid: int) -> bool:
    """Whether `pid` is a running tf2pt process (a dead PID, or one reused by another program,
    is not). Without /proc, any live process counts: never sweep what might be in use."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        if Path("/proc/self/cmdline").exists():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    except OSError:
        return True
    return any(word in cmdline for word in TF2PT_COMMAND_WORDS)


def _megabytes(directory: Path) -> float:
    total = 0
    for root, _, files in os.walk(directory):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_size
    return total / 1e6


class OutputLock:
    """`.NAME.tf2pt-lock` beside the output, held (flock) from staging to publishing.

    Exactly one tf2pt run writes a given output at a time. The file is removed on release; a
    run that locked a file its previous holder had just removed notices (different inode) and
    retries, so two runs can never both believe they hold it.
    """

    def __init__(self, final: Path):
        self.final = final
        self.path = final.parent / f".{final.name}{LOCK_SUFFIX}"
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        import fcntl

        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except OSError as exc:
                if exc.errno not in NO_LOCKS:
                    os.close(fd)
                    raise
                self._fd = fd  # no locking here: NOREPLACE renames still guard the output
                return True
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self._fd = fd
                return True
            os.close(fd)

    def acquire(self) -> None:
        if not self.try_acquire():
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                holder = f" (PID {int(self.path.read_text())})"
            raise UsageError(
                f"another tf2pt run{holder} is writing this output",
                self.final,
                "wait for it to finish, or choose another output",
            )

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # while still holding it: see the class docstring
        os.close(self._fd)
        self._fd = None


def sweep_stale(directory: Path, name: str | None = None) -> list[str]:
    """Remove `.NAME.tf2pt-partial-PID` / `-replaced-PID` dirs in `directory` left by runs that
    no longer exist (only for `name`, if given). Returns one line per removal.

    A dir is removed only when its PID is not a live tf2pt process and its output's lock can be
    taken (no run is writing that output), so a live run's dir is never touched.
    """
    removed = []
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = STALE_NAME.fullmatch(entry.name)
        if not m or (name is not None and m["name"] != name) or not entry.is_dir():
            continue
        pid = int(m["pid"])
        if pid == os.getpid() or _is_live_tf2pt(pid):
            continue
        lock = OutputLock(directory / m["name"])
        if name is None and not lock.try_acquire():
            continue  # the caller of a named sweep already holds this lock
        try:
            size = _megabytes(entry)
            shutil.rmtree(entry, ignore_errors=True)
        finally:
            lock.release()
        if not entry.exists():
            removed.append(
                f"removed {entry} ({size:.1f} MB), left by tf2pt run {pid} which no longer exists"
            )
    return removed


def _belongs_to(path: Path, final: Path) -> bool:
    """Whether `path` is OUT, its staging dir, lock or set-aside sibling, or inside one."""
    if not path.is_relative_to(final.parent) or path == final.parent:
        return False
    top = path.relative_to(final.parent).parts[0]
    return top == final.name or top.startswith((f".{final.name}.tf2pt", f"{final.name}."))


def write_failure(exc: OSError, final: Path) -> OutputError | None:
    """The one-line error for a full disk or an unwritable location beside `final`; None for
    other errors (e.g. an unreadable source file, which is not the output's fault)."""
    hint = WRITE_FAILURE_HINTS.get(exc.errno)
    if hint is None:
        return None
    if exc.filename and not _belongs_to(Path(os.fsdecode(exc.filename)).absolute(), final):
        return None
    where = f": {exc.filename}" if exc.filename else ""
    return OutputError(f"cannot write the output ({exc.strerror}{where})", final, hint)


class StagedOutput:
    """An output directory that appears whole or not at all.

    Everything is written into a hidden sibling; `commit()` renames it into place (never over an
    existing output unless `force`), `set_aside()` publishes it beside OUT instead. Leaving the
    `with` block otherwise (an error, Ctrl-C, SIGTERM turned into an exception) removes the
    sibling and any parent directories this created; a full disk or an unwritable location
    becomes one OutputError. Entering sweeps what killed runs left for this output.
    """

    def __init__(self, final: str | Path, force: bool = False, progress: Progress | None = None):
        self.final = Path(final).absolute()
        self.force = force
        self.progress = progress or (lambda _: None)
        self._refuse_existing()
        pid = os.getpid()
        self.path = self.final.parent / f".{self.final.name}.tf2pt-{PARTIAL}-{pid}"
        self._aside = self.final.parent / f".{self.final.name}.tf2pt-{REPLACED}-{pid}"
        self._lock = OutputLock(self.final)
        self._created: list[Path] = []
        self._committed = False

    def _refuse_existing(self) -> None:
        if self.final.exists() and not self.force:
            raise UsageError("output already exists", self.final, "pass --force to replace it")
        if self.final.exists() and not self.final.is_dir():
            raise UsageError("output exists and is not a directory", self.final)

    def __enter__(self) -> StagedOutput:
        missing = []
        parent = self.final.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        try:
            for d in reversed(missing):
                d.mkdir()
                self._created.append(d)
            self._lock.acquire()
            for line in sweep_stale(self.final.parent, self.final.name):
                self.progress(line)
            self._refuse_existing()  # another run may have published since __init__
            self.path.mkdir()
        except OSError as exc:
            self._cleanup()
            raise OutputError(
                f"cannot create the output directory ({exc.strerror})",
                self.final,
                "choose a writable location",
            ) from None
        except BaseException:
            self._cleanup()
            raise
        return self

    def commit(self) -> None:
        """Publish as OUT; without force, fail (UsageError) rather than replace anything."""
        try:
            flushed = publish(self.path, self.final, self.force, self._aside)
        except FileExistsError:
            raise UsageError(
                "output appeared while converting; it was left untouched",
                self.final,
                "pass --force to replace it",
            ) from None
        self._published(flushed)

    def set_aside(self, suffix: str = ".parity-failed") -> Path:
        """Publish as the visible sibling OUT+suffix (a diagnostic tf2pt owns), replacing an
        earlier one whole; OUT itself is not touched."""
        dest = self.final.with_name(self.final.name + suffix)
        self._published(publish(self.path, dest, True, self._aside))
        return dest

    def _published(self, flushed: Flushed) -> None:
        """Directories this run created hold the new output too: their entries are flushed."""
        for d in self._created:
            fsync_path(d.parent)
        self._committed = True
        self.progress(f"published durably: {flushed.describe()}")

    def _cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self._lock.release()
        for d in reversed(self._created):
            with contextlib.suppress(OSError):
                d.rmdir()

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._committed:
            self._cleanup()
        else:
            self._lock.release()
        if isinstance(exc, OSError):
            failure = write_failure(exc, self.final)
            if failure is not None:
                raise failure from None
