"""Install shapes: `pip install tf2pt` alone (no extras) converts h5 sources, and every command
that needs an optional framework stops in one line naming the extra, writing nothing.

The core shape is a real one: a fresh venv with the package installed from this tree, as a user
would, so a framework that sneaks into the core dependencies or an import that runs too early
shows up here. The full shape is this test venv (`make install`).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import run_cli
from .test_transformers5 import HF5_PYTHON

REPO = Path(__file__).resolve().parents[1]
# What `pip install <repo>` needs of the tree; copied so that building leaves nothing in it.
PACKAGE_FILES = ("pyproject.toml", "README.md", "converter", "mappings")
# The optional frameworks, by import name → the distribution the extras install.
FRAMEWORKS = {
    "tensorflow": "tensorflow-cpu",
    "tf_keras": "tf-keras",
    "keras": "keras",
    "keras_hub": "keras-hub",
    "torch": "torch",
    "transformers": "transformers",
    "matplotlib": "matplotlib",
}


def _tree(*roots: Path) -> dict[str, int]:
    """Every file under `roots` with its size: what a command must leave as it was."""
    return {str(p): p.stat().st_size for r in roots for p in r.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def core(tmp_path_factory, tf_checkpoints, tf1_checkpoints) -> dict[str, Path]:
    """A fresh venv with `pip install <this tree>` (core only), and the session's sources made
    by the real producers: a transformers TF classifier (h5) and a TF1 BERT checkpoint."""
    root = tmp_path_factory.mktemp("core-install")
    tree = root / "tf2pt-src"
    for name in PACKAGE_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            tree.mkdir(exist_ok=True)
            shutil.copy2(source, tree / name)
    # The wheel is built here, with this venv's setuptools (no isolated build env to fill);
    # the fresh venv then gets it and its declared dependencies, as `pip install` would.
    wheels = root / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--wheel-dir", str(wheels), str(tree)],
        check=True,
        timeout=300,
    )
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
        + ["install", "--quiet", "--no-input", *map(str, wheels.glob("tf2pt-*.whl"))],
        check=True,
        timeout=300,
    )
    work = root / "work"
    work.mkdir()
    h5, tf1 = tf_checkpoints["sequence-classification"], tf1_checkpoints["encoder"]
    return {"venv": venv, "work": work, "h5": h5, "tf1": tf1}


def _core_tf2pt(core: dict[str, Path], *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(core["venv"] / "bin" / "tf2pt"), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=core["work"],
        env=env,
        timeout=120,
    )


def _converted(core: dict[str, Path]) -> Path:
    """The h5 source converted by the core install (once per module)."""
    out = core["work"] / "core-out"
    if not out.exists():
        result = _core_tf2pt(core, "convert", core["h5"], out, "--no-verify")
        assert result.returncode == 0, result.stderr
    return out


def test_core_install_brings_no_optional_framework(core):
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    result = subprocess.run(
        [str(core["venv"] / "bin" / "python"), "-c", probe, *FRAMEWORKS],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"


def test_core_install_converts_an_h5_without_verify_like_the_full_install(core, tmp_path):
    out = _converted(core)
    report = json.loads((out / "conversion_report.json").read_text())
    counts = report["counts"]
    assert counts["mapped"] == counts["source_tensors"] > 0
    assert counts["unexpected"] == counts["missing"] == 0
    assert report["class"] == "RobertaForSequenceClassification"
    # The full install converts the same source to the same bytes.
    code, _, err = run_cli(["convert", str(core["h5"]), str(tmp_path / "full"), "--no-verify"])
    assert code == 0, err
    for name in ("model.safetensors", "config.json"):
        assert (out / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name


# command line (after the installed `tf2pt`), the module it must name, the extra to install
NEEDS_A_FRAMEWORK = {
    "convert-verifying": (["convert", "{h5}", "{new}"], "tensorflow", "verify"),
    "verify": (["verify", "{h5}", "{out}"], "torch", "verify"),
    "doctor": (["doctor", "{out}/model.safetensors", "--fix", "{new}"], "torch", "doctor"),
    "convert-tf1": (["convert", "{tf1}", "{new}", "--no-verify"], "tensorflow", "tf-checkpoint"),
    "inspect-tf1": (["inspect", "{tf1}"], "tensorflow", "tf-checkpoint"),
}


@pytest.mark.parametrize("case", NEEDS_A_FRAMEWORK)
def test_command_needing_a_missing_framework_says_which_extra_in_one_line(core, case):
    argv, module, extra = NEEDS_A_FRAMEWORK[case]
    places = {"h5": core["h5"], "tf1": core["tf1"], "out": _converted(core)}
    places["new"] = core["work"] / f"new-{case}"
    watched = (core["work"], core["h5"], core["tf1"])
    before = _tree(*watched)
    result = _core_tf2pt(core, *(a.format(**places) for a in argv))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tf2pt: error: ")
    assert f"{module} (not installed)" in lines[0]
    assert f"pip install 'tf2pt[{extra}]'" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not places["new"].exists()
    assert _tree(*watched) == before
    if case == "convert-verifying":
        assert "--no-verify" in lines[0]


def test_env_in_the_core_install_lists_every_extra_as_missing(core):
    result = _core_tf2pt(core, "env", "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["modules"] == dict.fromkeys(FRAMEWORKS)
    available = {c["name"]: c["available"] for c in found["capabilities"]}
    assert available == {"core": True, "tf-checkpoint": False, "verify": False, "doctor": False}
    text = _core_tf2pt(core, "env")
    assert text.returncode == 0 and "not installed" in text.stdout
    assert "pip install 'tf2pt[verify]'" in text.stdout


def test_env_in_the_full_install_finds_every_framework_and_its_version():
    code, out, err = run_cli(["env", "--json"])
    assert code == 0, err
    found = json.loads(out)
    expected = {m: importlib.metadata.version(d) for m, d in FRAMEWORKS.items()}
    assert found["modules"] == expected
    assert all(c["available"] for c in found["capabilities"]), found["capabilities"]
    assert all(not missing for missing in found["verify_by_runner"].values())


def test_transformers_5_is_named_too_new_for_verify_but_serves_doctor():
    assert HF5_PYTHON.exists(), f"{HF5_PYTHON} is missing: run `make install`"
    check = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from importlib.metadata import version;"
        "from converter.capabilities import DOCTOR, VERIFY, problems;"
        "print(version('transformers')); print(problems(VERIFY.modules));"
        "print(problems(DOCTOR.modules))"
    )
    result = subprocess.run(
        [str(HF5_PYTHON), "-c", check, str(REPO)], capture_output=True, text=True, check=True
    )
    version, verify_problems, doctor_problems = result.stdout.strip().splitlines()
    assert version.startswith("5.")
    assert f"transformers <5 (found {version})" in verify_problems
    assert doctor_problems == "[]"


def test_verifying_a_keras_hub_source_without_keras_hub_names_it(
    keras_hub_sources, tmp_path, monkeypatch
):
    """The full install minus keras-hub: verification of an h5 from transformers still works,
    but a keras-hub source needs keras_hub for its TF runner, and says so."""
    import converter.capabilities as capabilities

    find_spec = capabilities.importlib.util.find_spec
    monkeypatch.setattr(
        capabilities.importlib.util,
        "find_spec",
        lambda name, *args: None if name == "keras_hub" else find_spec(name, *args),
    )
    src = keras_hub_sources["base-model"]["model.keras"]
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out")])
    assert code == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"tf2pt: error: {src}: verifying a keras-hub source needs keras_hub")
    assert "pip install 'tf2pt[verify]'" in last and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
