"""Test sources built once and kept by content, shared by every pytest process on the machine.

A source the real producers make (a TF checkpoint, a keras-hub preset, a widened trained model)
is fixed by the builder's inputs, the test code that builds it, the head → class lists of the
tables and the producers' versions. Its directory is named by a hash of those, under
`.cache/fixtures/`: built once, then reused by the other xdist worker and by the next run, a file
lock making the others wait while one builds. A new build of a fixture replaces its earlier
ones, so the cache holds one build per fixture.

Outputs of the code under test (conversions) are never kept across runs: `once_per_run` shares
them between the workers of one run only.

A handed-out directory is read-only by contract: `assert_untouched` (run after every test by
conftest) fails the test that wrote into one; copy a fixture before changing it.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import inspect
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

TESTS = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("TF2PT_FIXTURE_CACHE", TESTS.parent / ".cache" / "fixtures"))
# What made the bytes: a different version of any of these may write different files.
PRODUCERS = (
    "h5py",
    "keras",
    "keras-hub",
    "numpy",
    "safetensors",
    "sentencepiece",
    "tensorflow-cpu",
    "tf-keras",
    "tf-models-no-deps",
    "tokenizers",
    "torch",
    "transformers",
)
MANIFEST = ".fixture-manifest.json"
KEY_LENGTH = 20

_handed_out: dict[Path, dict[str, list[int]]] = {}  # this process's directories → manifest
_in_use: list = []  # shared locks on them (`.use` files), held until the process ends


def _helper_modules() -> list[Path]:
    """The tests' helper modules (conftest, producers, *_fixtures, real_models, …): what any
    builder may call into. A change to one rebuilds every fixture; tests themselves do not."""
    return sorted(p for p in TESTS.glob("*.py") if not p.name.startswith("test_"))


def _table_classes() -> dict[str, dict[str, list[str]]]:
    """Every table's head → (PyTorch class, source class): builders read them from the tables."""
    from converter.tables import load_table, table_names

    tables = {name: load_table(name) for name in table_names()}
    return {
        name: {h: [t.class_name(h), t.heads[h].source_class] for h in t.heads}
        for name, t in tables.items()
    }


@cache
def _fingerprint() -> str:
    """What every build depends on: producers' versions, helper modules, the tables' classes."""
    versions = []
    for name in PRODUCERS:
        try:
            versions.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} absent")
    digest = hashlib.sha256("\n".join(versions).encode())
    for helper in _helper_modules():
        digest.update(hashlib.sha256(helper.read_bytes()).digest())
    digest.update(json.dumps(_table_classes(), sort_keys=True).encode())
    return digest.hexdigest()


def content_key(build: Callable, inputs: object) -> str:
    """The hash naming a build: its inputs, the source of the module defining `build` and the
    builder's name, and `_fingerprint`."""
    module = inspect.getsourcefile(build)
    digest = hashlib.sha256(_fingerprint().encode())
    digest.update(Path(module).read_bytes() if module else b"")
    digest.update(build.__qualname__.encode())
    digest.update(json.dumps(inputs, sort_keys=True, default=repr).encode())
    return digest.hexdigest()[:KEY_LENGTH]


def _manifest(directory: Path) -> dict[str, list[int]]:
    """Every file under `directory` with its size and modification time: a write changes one."""
    return {
        str(p.relative_to(directory)): [p.stat().st_size, p.stat().st_mtime_ns]
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


@contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _intact(directory: Path) -> dict[str, list[int]] | None:
    """The recorded manifest of a finished build if its files still match it, else None."""
    try:
        recorded = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return recorded if recorded == _manifest(directory) else None


def _try_lock(path: Path, kind: int):
    """An open handle holding `kind` (LOCK_EX or LOCK_SH) on `path`, or None if it is taken."""
    handle = open(path, "a")  # noqa: SIM115 - held open as long as the lock is
    try:
        fcntl.flock(handle, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _remove_idle(root: Path, pattern: str, keep: Path) -> None:
    """Remove the entries named by `pattern` that no process is building or using."""
    for entry in root.iterdir():
        if entry == keep or not entry.is_dir() or not re.fullmatch(pattern, entry.name):
            continue
        building = _try_lock(root / f"{entry.name}.lock", fcntl.LOCK_EX)
        using = building and _try_lock(root / f"{entry.name}.use", fcntl.LOCK_EX)
        if using:
            shutil.rmtree(entry, ignore_errors=True)
            for suffix in (".lock", ".use"):
                (root / f"{entry.name}{suffix}").unlink(missing_ok=True)
        for handle in (using, building):
            if handle:
                handle.close()


def build_once(
    root: Path, name: str, build: Callable[[Path], object], replaces: str | None = None
) -> Path:
    """`root/name`, made by `build(root/name)` unless a finished, untouched build is there.

    The build writes in place (producers may record the path they wrote to) and is finished
    when its manifest is written, last: a build that failed or was killed has none, so the next
    process to ask removes it and builds again. A new build removes the idle entries whose
    names match `replaces` (earlier builds of the same fixture)."""
    target = root / name
    with _locked(root / f"{name}.lock"):
        recorded = _intact(target)
        if recorded is None:
            if replaces:
                _remove_idle(root, replaces, keep=target)
            shutil.rmtree(target, ignore_errors=True)
            try:
                build(target)
                target.mkdir(exist_ok=True)
                recorded = _manifest(target)
                (target / MANIFEST).write_text(json.dumps(recorded))
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
    if target not in _handed_out:  # a shared lock as long as this process may use it
        _in_use.append(_try_lock(root / f"{name}.use", fcntl.LOCK_SH))
    _handed_out[target] = recorded
    return target


def kept(
    name: str, build: Callable[[Path], object], key: object, made_by: Callable | None = None
) -> Path:
    """The directory `build(directory)` fills, kept in the cache under `name` and a content key:
    `key` with the module defining `made_by` (default `build`) must determine what is built."""
    return build_once(
        CACHE,
        f"{name}-{content_key(made_by or build, [name, key])}",
        build,
        replaces=rf"{re.escape(name)}-[0-9a-f]{{{KEY_LENGTH}}}",
    )


def cached(name: str, build: Callable[..., object], **inputs) -> Path:
    """The directory `build(directory, **inputs)` fills, kept in the cache by content."""
    return kept(name, lambda directory: build(directory, **inputs), inputs, made_by=build)


def run_root(tmp_path_factory) -> Path:
    """A directory every worker of this pytest run shares (xdist's workers have their own
    base temp dirs, inside the one the controller made for the run)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once_per_run(tmp_path_factory, name: str, build: Callable[[Path], object]) -> Path:
    """`build(directory)` done by whichever worker of this run asks first; the others wait
    and reuse it. For outputs of the code under test, which each run must make anew."""
    return build_once(run_root(tmp_path_factory) / "shared", name, build)


def assert_untouched() -> None:
    """Fail if a handed-out directory changed: a test wrote into a shared fixture."""
    for directory, recorded in _handed_out.items():
        now = _manifest(directory)
        if now != recorded:
            keys = now.keys() | recorded.keys()
            changed = sorted(k for k in keys if now.get(k) != recorded.get(k))
            _handed_out[directory] = now  # blame this test once, not every later one
            raise AssertionError(
                f"a shared fixture was changed in place: {directory} "
                f"({', '.join(changed[:5])}); copy it first"
            )
