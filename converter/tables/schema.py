"""One validator for every YAML file tf2pt reads: mapping tables, their shared vocabulary, the
doctor's repairs and fairseq specs.

A schema is data: `Obj` (known keys, some required), `ListOf`, `MapOf`, `OneOf`, or a Python
type. Validation walks the document once and stops at the first problem with one line naming the
file, the path inside it and what is wrong — for an unknown key, the closest allowed key, since a
misspelt key that is silently ignored is the worst kind of table bug.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import MappingTableError


@dataclass(frozen=True)
class Obj:
    """A mapping with these keys (each with its schema); `required` must be present."""

    keys: dict[str, Any]
    required: frozenset[str] = frozenset()
    # Extra check on the whole mapping once its keys are valid (returns an error or None).
    check: Callable[[dict], str | None] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ListOf:
    item: Any


@dataclass(frozen=True)
class MapOf:
    """A mapping whose keys are free (config keys, group names) and values share a schema."""

    value: Any
    key: Any = str


@dataclass(frozen=True)
class OneOf:
    """The first schema that fits; the error names what was expected."""

    options: tuple[Any, ...]
    expected: str


ANY = object()
Scalar = (str, int, float, bool)
SCALAR = OneOf((str, int, float, bool, type(None)), "a number, string, bool or null")


def _type_name(spec: Any) -> str:
    if isinstance(spec, Obj):
        return "a mapping"
    if isinstance(spec, MapOf):
        return "a mapping"
    if isinstance(spec, ListOf):
        return "a list"
    if isinstance(spec, OneOf):
        return spec.expected
    if isinstance(spec, tuple):
        return " or ".join(_type_name(s) for s in spec)
    return {str: "a string", int: "an integer", bool: "true or false", float: "a number"}.get(
        spec, getattr(spec, "__name__", str(spec))
    )


def _got(value: Any) -> str:
    return (
        f"{type(value).__name__} {value!r}" if isinstance(value, Scalar) else type(value).__name__
    )


def closest_key(key: Any, allowed: list[str]) -> str | None:
    hits = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    return hits[0] if hits else None


def _container(spec: Any) -> type | None:
    if isinstance(spec, Obj | MapOf):
        return dict
    return list if isinstance(spec, ListOf) else None


def _fits(value: Any, spec: Any) -> bool:
    try:
        _walk("", value, spec)
    except MappingTableError:
        return False
    return True


def _walk(where: str, value: Any, spec: Any) -> None:
    at = f"{where}: " if where else ""
    if spec is ANY:
        return
    if isinstance(spec, OneOf):
        if any(_fits(value, s) for s in spec.options):
            return
        # The option of the value's own shape (a mapping, a list) says precisely what is wrong.
        same = [
            s
            for s in spec.options
            if _container(s) is not None and isinstance(value, _container(s))
        ]
        if len(same) == 1:
            _walk(where, value, same[0])
        raise MappingTableError(f"{at}expected {spec.expected}, got {_got(value)}")
    if isinstance(spec, Obj):
        if not isinstance(value, dict):
            raise MappingTableError(f"{at}expected a mapping, got {_got(value)}")
        allowed = sorted(spec.keys)
        for key in value:
            if key not in spec.keys:
                near = closest_key(key, allowed)
                hint = f" (did you mean '{near}'?)" if near else ""
                raise MappingTableError(
                    f"{at}unknown key '{key}'{hint}; allowed: {', '.join(allowed)}"
                )
        missing = sorted(spec.required - set(value))
        if missing:
            raise MappingTableError(f"{at}missing key(s) {', '.join(missing)}")
        for key, item in value.items():
            _walk(f"{where}.{key}" if where else str(key), item, spec.keys[key])
        problem = spec.check(value) if spec.check else None
        if problem:
            raise MappingTableError(f"{at}{problem}")
        return
    if isinstance(spec, MapOf):
        if not isinstance(value, dict):
            raise MappingTableError(f"{at}expected a mapping, got {_got(value)}")
        for key, item in value.items():
            if not _fits(key, spec.key):
                raise MappingTableError(f"{at}key {key!r} must be {_type_name(spec.key)}")
            _walk(f"{where}.{key}" if where else str(key), item, spec.value)
        return
    if isinstance(spec, ListOf):
        if not isinstance(value, list):
            raise MappingTableError(f"{at}expected a list, got {_got(value)}")
        for i, item in enumerate(value):
            _walk(f"{where}[{i}]", item, spec.item)
        return
    types = spec if isinstance(spec, tuple) else (spec,)
    # YAML's true/false are ints to Python; a bool is never accepted where a number is meant.
    if isinstance(value, bool) and bool not in types:
        raise MappingTableError(f"{at}expected {_type_name(spec)}, got {_got(value)}")
    if float in types and isinstance(value, int):
        return
    if not isinstance(value, types):
        raise MappingTableError(f"{at}expected {_type_name(spec)}, got {_got(value)}")


def validate(path: Any, data: Any, spec: Any) -> Any:
    """`data` (a parsed YAML document from `path`) if it fits `spec`; else MappingTableError
    naming the file, where in it, and what is wrong."""
    try:
        _walk("", data, spec)
    except MappingTableError as exc:
        raise MappingTableError(f"{path}: {exc.what}") from None
    return data


def load_yaml(path: Any, spec: Any) -> Any:
    """Read and validate one YAML file (the doctor's specs and the tables come through here)."""
    import yaml

    try:
        # libyaml's safe loader when PyYAML has it: the same data, about 10× faster to parse,
        # and every convert parses every table to choose one.
        data = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise MappingTableError(f"{path}: invalid YAML ({exc})") from None
    except OSError as exc:
        raise MappingTableError(f"{path}: cannot read ({exc.strerror})") from None
    return validate(path, data, spec)
