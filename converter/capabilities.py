"""Which feature needs which optional module, and which extra of `pip install tf2pt[…]` brings it.

Conversion itself needs only the core dependencies (h5py, numpy, safetensors, click, pyyaml,
tokenizers).
Everything else is optional, so a command that needs a missing framework must say so in one line
before doing any work, rather than die halfway through with a traceback. Availability is asked
of `importlib.util.find_spec` and package metadata: cheap, nothing is imported.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .errors import MissingDependencyError
from .tables.reference import RUNNERS


@dataclass(frozen=True)
class Module:
    """An optional module: its import name, the distribution that usually provides it, and the
    first major version that no longer works (transformers 5 dropped every TF class)."""

    name: str
    distribution: str
    major_below: int | None = None


@dataclass(frozen=True)
class Capability:
    """A feature of tf2pt that needs optional modules; `extra` is the pip extra providing them."""

    name: str
    enables: str
    modules: tuple[str, ...]
    extra: str


MODULES: dict[str, Module] = {
    m.name: m
    for m in (
        Module("tensorflow", "tensorflow-cpu"),
        Module("tf_keras", "tf-keras"),  # transformers' TF classes refuse Keras 3 without it
        Module("keras", "keras"),
        Module("keras_hub", "keras-hub"),
        Module("torch", "torch"),
        Module("transformers", "transformers"),
        Module("matplotlib", "matplotlib"),
    )
}

# The modules each TF reference runner (a table's `reference: {runner: …}`) adds to
# verification's own; the registry in tables/reference.py says which.
VERIFY_RUNNER_MODULES: dict[str, tuple[str, ...]] = {
    name: entry.modules for name, entry in RUNNERS.items()
}

TF_CHECKPOINT = Capability(
    "tf-checkpoint",
    "read TensorFlow checkpoint bundles (TF1 model.ckpt-N.index + .data-*)",
    ("tensorflow",),
    "tf-checkpoint",
)
VERIFY = Capability(
    "verify",
    "verify parity: tf2pt verify, and tf2pt convert without --no-verify",
    ("tensorflow", "torch", "transformers<5", "matplotlib"),
    "verify",
)
DOCTOR = Capability(
    "doctor",
    "diagnose and repair PyTorch checkpoints: tf2pt doctor",
    ("torch", "transformers"),
    "doctor",
)
CAPABILITIES: tuple[Capability, ...] = (TF_CHECKPOINT, VERIFY, DOCTOR)
BY_NAME: dict[str, Capability] = {c.name: c for c in CAPABILITIES}

# Core features, for `tf2pt env`: what works with the core install alone.
CORE_ENABLES = (
    "convert --no-verify (h5, .keras, .weights.h5, TF2 checkpoint and SavedModel sources), "
    "inspect, archs, summarize"
)

# torch from PyPI defaults to a multi-GB CUDA build on Linux; the CPU wheel is enough here.
TORCH_FIRST = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"


def _requirement(spec: str) -> tuple[Module, int | None]:
    """`transformers<5` → (the transformers module, 5)."""
    name, _, below = spec.partition("<")
    module = MODULES[name]
    return module, int(below) if below else module.major_below


@cache
def _distributions() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def installed_version(module: str) -> str | None:
    """The version of the distribution that provides `module`, without importing it."""
    for dist in _distributions().get(module, []):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _major(version: str) -> int | None:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def problems(modules: tuple[str, ...]) -> list[str]:
    """What is wrong with these module requirements here: `tensorflow (not installed)`,
    `transformers <5 (found 5.0.0)`. Empty when all are usable."""
    found = []
    for spec in modules:
        module, major_below = _requirement(spec)
        if importlib.util.find_spec(module.name) is None:
            found.append(f"{module.name} (not installed)")
            continue
        if major_below is None:
            continue
        version = installed_version(module.name) or ""
        major = _major(version)
        if major is not None and major >= major_below:
            found.append(f"{module.name} <{major_below} (found {version})")
    return found


def install_hint(capability: Capability) -> str:
    return f"pip install 'tf2pt[{capability.extra}]'"


def require(
    capability: Capability,
    needed_for: str,
    path: str | Path | None = None,
    also: tuple[str, ...] = (),
    instead: str | None = None,
) -> None:
    """Raise a one-line error when `capability` (plus `also` modules) is not usable here.

    `needed_for` says what the user asked for ("tf2pt verify"); `instead` is a way around it that
    needs nothing more ("pass --no-verify to convert without the parity check")."""
    missing = problems(capability.modules + also)
    if not missing:
        return
    hint = install_hint(capability) + (f", or {instead}" if instead else "")
    raise MissingDependencyError(f"{needed_for} needs {', '.join(missing)}", path, hint)


def environment() -> dict:
    """What `tf2pt env` shows: versions found of every optional module, and which capabilities
    are usable here (with what is missing for the others)."""
    from . import __version__

    return {
        "tf2pt": __version__,
        "python": f"{platform.python_version()} ({sys.executable})",
        "modules": {
            name: installed_version(name) if importlib.util.find_spec(name) else None
            for name in MODULES
        },
        "capabilities": [
            {"name": "core", "enables": CORE_ENABLES, "available": True, "missing": []},
            *(
                {
                    "name": c.name,
                    "enables": c.enables,
                    "available": not problems(c.modules),
                    "missing": problems(c.modules),
                    "install": install_hint(c),
                }
                for c in CAPABILITIES
            ),
        ],
        "torch_first": TORCH_FIRST,
        "verify_by_runner": {
            runner: problems(VERIFY.modules + extra)
            for runner, extra in VERIFY_RUNNER_MODULES.items()
        },
    }
