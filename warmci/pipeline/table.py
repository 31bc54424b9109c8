"""Typed access to one TOML table of a pipeline file.

Each read names the expected type; a wrong type, a missing required key or
a key nobody read becomes a PipelineError naming the file and the dotted key.
"""
from __future__ import annotations

from typing import Any

from warmci.errors import PipelineError


class Table:
    """A TOML table being read: type-checked access, and unknown keys refused."""

    def __init__(self, path: str, keypath: str, data: object) -> None:
        if not isinstance(data, dict):
            raise PipelineError(path, keypath, f"expected a table, got {typename(data)}")
        self.path, self.keypath = path, keypath
        self.data: dict[str, Any] = data
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        if not name:
            return self.keypath
        return f"{self.keypath}.{name}" if self.keypath else name

    def fail(self, name: str, problem: str) -> PipelineError:
        return PipelineError(self.path, self.key(name), problem)

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = None, *,
            required: bool = False) -> Any:
        self.seen.add(name)
        if name not in self.data:
            if required:
                raise self.fail(name, "is required but missing")
            return default
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # TOML booleans are ints in Python; never accept one for the other.
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok:
            want = " or ".join(_typename_of(k) for k in kinds)
            raise self.fail(name, f"expected {want}, got {typename(value)} {value!r}")
        return value

    def strings(self, name: str, default: tuple[str, ...] = (), *, required: bool = False,
                nonempty: bool = False) -> tuple[str, ...]:
        value = self.get(name, list, None, required=required)
        if value is None:
            return default
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.fail(f"{name}[{i}]", f"expected a string, got {typename(item)} {item!r}")
        if nonempty and not value:
            raise self.fail(name, "expected a non-empty list of strings")
        return tuple(value)

    def command(self, name: str, *, required: bool = False) -> tuple[str, ...] | None:
        cmd = self.strings(name, (), required=required)
        if name in self.data and not cmd:
            raise self.fail(name, "expected a command as a non-empty list of strings, e.g. [\"pytest\", \"-x\"]")
        return cmd or None

    def env(self, name: str) -> tuple[tuple[str, str], ...]:
        value = self.get(name, dict, {})
        for k, v in value.items():
            if not isinstance(v, str):
                raise self.fail(f"{name}.{k}", f"expected a string, got {typename(v)} {v!r}")
        return tuple(sorted(value.items()))

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            allowed = ", ".join(sorted(self.seen))
            raise self.fail(unknown[0], f"unknown key; allowed keys here: {allowed}")


def _typename_of(kind: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
            list: "a list", dict: "a table"}.get(kind, kind.__name__)


def typename(value: object) -> str:
    return _typename_of(type(value))
