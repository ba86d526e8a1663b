"""Imports point one way: down the ladder of stages that design.md draws, and never in a circle.

Read from the source with `ast` (nothing is imported), counting every import, also the lazy ones
inside functions: a lazy import that runs back up is still an arrow back up."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "converter"

# Lowest first. A module may import its own stage and the stages below it. tokenizers and doctor
# stand beside the pipeline: they use the stages below them and are used by the ones above.
LADDER = (
    ("converter", "converter.errors"),  # the package face (its version) and the error classes
    ("converter.tables",),
    ("converter.capabilities", "converter.tf_import"),
    ("converter.readers",),
    ("converter.provenance",),  # what the output assumes and the user declares: plan and up use it
    ("converter.plan",),
    ("converter.tokenizers",),
    ("converter.write",),
    ("converter.doctor",),
    ("converter.verify",),
    ("converter.report",),
    ("converter.pipeline",),
    ("converter.api",),
    ("converter.cli", "converter.progress"),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every converter module `path` imports, resolved to absolute names."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from . import x`: x may be a module of that package
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in modules else target)
    return {m for m in found if m in modules and m != name}


def stage(module: str) -> int:
    """The ladder index of the longest stage prefix naming `module`."""
    on = [
        (len(prefix), index)
        for index, names in enumerate(LADDER)
        for prefix in names
        if module == prefix or module.startswith(prefix + ".")
    ]
    assert on, f"{module} is on no stage of the ladder: add it to LADDER"
    return max(on)[1]


def import_graph() -> dict[str, set[str]]:
    return {module_name(p): imported_modules(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_stands_on_a_stage():
    for module in import_graph():
        stage(module)


def test_no_import_runs_back_up_the_ladder():
    upward = [
        f"{module} (stage {LADDER[stage(module)][0]}) imports {target} "
        f"(stage {LADDER[stage(target)][0]})"
        for module, targets in import_graph().items()
        for target in sorted(targets)
        if stage(target) > stage(module)
    ]
    assert not upward, "\n".join(upward)


def test_no_modules_import_each_other_in_a_circle():
    graph = import_graph()
    circles = []
    for start in graph:
        # depth-first search for a path from a module back to itself
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    circles.append(" → ".join([*path, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    assert not circles, "\n".join(sorted(set(circles))[:10])


def test_the_check_sees_an_upward_import(tmp_path):
    """The walker resolves relative imports the way Python does (so the checks above can fail)."""
    source = PACKAGE / "plan" / "analysis.py"
    assert "converter.readers" in imported_modules(source)
    assert stage("converter.cli") > stage("converter.plan.analysis") > stage("converter.tables.ops")
