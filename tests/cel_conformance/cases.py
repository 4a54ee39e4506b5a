"""cel-spec's simple conformance cases, as the admission CEL subset can run them.

The cases are cel-spec's ``tests/simple/testdata/*.textproto`` at the version
``tests/kube/cel-spec/go.mod`` pins. ``scripts/cel-spec`` (run by ``scripts/test``) fetches
that Go module and writes each file as JSON with the module's own protobuf types, into
``$EDGEWARDEN_KUBE_CACHE/cel-spec-<version>/json/``; nothing of cel-spec is in this repository.

Every case of every file is read. A case runs unless it needs something admission CEL does
not have; then it is skipped under one of the categories of :data:`SKIP_REASONS` (see
:func:`skip_reason`, and docs/cel-conformance.md).
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.kube.binaries import REPO, cache_dir, in_ci

PIN = REPO / "tests" / "kube" / "cel-spec" / "go.mod"
FETCH_SCRIPT = "scripts/cel-spec"

# Why a case is not run, by category. The test names the category of each skipped case.
SKIP_REASONS = {
    "messages": "protobuf messages, enums or wrapper types (admission objects are JSON)",
    "time": "timestamps and durations (admission objects carry times as strings)",
    "container": "a container (namespace) for name resolution, which admission CEL has none of",
    "declarations": "declarations of functions or of message-typed variables (type_env)",
    "checker": "a type-checker result only (check_only or deduced types with no value)",
    "unknowns": "partial evaluation with unknowns, which admission never does",
    "macros-off": "macros disabled, which admission CEL cannot do",
    "non-json-binding": "a variable of a type JSON cannot carry (uint, bytes, a message)",
    "qualified-names": "a variable named with dots (a.b.c), which admission's variables are not",
    "extension": "a CEL extension Kubernetes does not offer (cel.bind, cel.@block)",
}

# Whole files whose every case is in one category.
FILE_CATEGORIES = {
    "proto2": "messages",
    "proto2_ext": "messages",
    "proto3": "messages",
    "wrappers": "messages",
    "enums": "messages",
    "timestamps": "time",
    "unknowns": "unknowns",
    "type_deduction": "checker",
    "bindings_ext": "extension",
    "block_ext": "extension",
}

# Spellings in an expression that need protobuf messages or time values.
_MESSAGES = re.compile(r"\bgoogle\.protobuf\.|\bTestAllTypes\b|\bNestedTestAllTypes\b|"
                       r"\bcel\.expr\.|\bGlobalEnum\b|\bNestedEnum\b")
_TIME = re.compile(r"\b(timestamp|duration)\s*\(|\bget(FullYear|Month|Date|DayOfMonth|DayOf"
                   r"Week|DayOfYear|Hours|Minutes|Seconds|Milliseconds)\s*\(")
# Value kinds (cel.expr.Value) the subset has: JSON's, plus what CEL literals make.
_PLAIN_VALUES = frozenset({"null_value", "bool_value", "int64_value", "uint64_value",
                           "double_value", "string_value", "bytes_value", "list_value",
                           "map_value", "type_value"})
_JSON_BINDINGS = frozenset({"null_value", "bool_value", "int64_value", "double_value",
                            "string_value", "list_value", "map_value"})


class Uint(int):
    """An expected uint64: a runtime may hand it to Python as a plain int (the Rust binding
    does) or as an int subclass of its own."""


@dataclass(frozen=True)
class TypeValue:
    """An expected CEL type value (``type(1)`` is ``int``)."""

    name: str


@dataclass(frozen=True)
class Case:
    """One conformance case: ``id`` is ``file/section/test``."""

    id: str
    file: str
    expr: str
    bindings: dict[str, Any]
    expects_error: bool
    expected: Any  # the value, when no error is expected
    skip: str | None  # a category of SKIP_REASONS


def pinned_version() -> str:
    match = re.search(r"^\s*(?:require\s+)?cel\.dev/expr\s+(v\S+)", PIN.read_text(), re.M)
    assert match, f"{PIN} pins no cel.dev/expr version"
    return match[1]


def data_dir() -> Path:
    """The JSON cases of the pinned version: skip without them (fail in CI, where
    scripts/test must have fetched them)."""
    version = pinned_version()
    directory = cache_dir() / f"cel-spec-{version}" / "json"
    if not directory.is_dir():
        message = (f"cel-spec {version}'s conformance cases are not fetched: run "
                   f"{FETCH_SCRIPT} (scripts/test does; it needs Go) (expected {directory})")
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return directory


def load_file(path: Path) -> list[Case]:
    name = path.stem
    data = json.loads(path.read_text(encoding="utf-8"), parse_int=str)
    return [
        _case(name, section["name"], test)
        for section in data.get("section", [])
        for test in section.get("test", [])
    ]


def load_all(directory: Path) -> dict[str, list[Case]]:
    return {path.stem: load_file(path) for path in sorted(directory.glob("*.json"))}


def _case(file: str, section: str, test: dict[str, Any]) -> Case:
    case_id = f"{file}/{section}/{test['name']}"
    expr = test.get("expr", "")
    skip = _skip_category(file, test)
    bindings: dict[str, Any] = {}
    expects_error = "eval_error" in test or "any_eval_errors" in test
    expected: Any = None
    if skip is None:
        bindings = {name: cel_value(binding["value"])
                    for name, binding in test.get("bindings", {}).items()}
        if "value" in test:
            expected = cel_value(test["value"])
        elif "typed_result" in test:
            expected = cel_value(test["typed_result"]["result"])
        elif not expects_error:
            expected = True  # simple.proto: no result matcher means the value true
    return Case(case_id, file, expr, bindings, expects_error, expected, skip)


def _skip_category(file: str, test: dict[str, Any]) -> str | None:
    """The category of SKIP_REASONS the case falls in, or None when it runs."""
    if file in FILE_CATEGORIES:
        return FILE_CATEGORIES[file]
    expr = test.get("expr", "")
    if _MESSAGES.search(expr) or _has_messages(test):
        return "messages"
    if _TIME.search(expr):
        return "time"
    if test.get("container"):
        return "container"
    if "unknown" in test or "any_unknowns" in test:
        return "unknowns"
    if test.get("check_only") or ("typed_result" in test and "result" not in
                                  test["typed_result"]):
        return "checker"
    if test.get("disable_macros"):
        return "macros-off"
    for declaration in test.get("type_env", []):
        if "function" in declaration or not _plain_type(declaration["ident"]["type"]):
            return "declarations"
    for name, binding in test.get("bindings", {}).items():
        if "value" not in binding or not _json_value(binding["value"]):
            return "non-json-binding"
        if "." in name:
            return "qualified-names"
    return None


def _has_messages(test: dict[str, Any]) -> bool:
    """Whether the expected value or a binding holds a message or a type outside JSON's."""
    results = [test.get("value"), test.get("typed_result", {}).get("result")]
    results += [binding.get("value") for binding in test.get("bindings", {}).values()]
    return any(value is not None and not _plain_value(value) for value in results)


def _plain_value(value: dict[str, Any]) -> bool:
    ((kind, inner),) = value.items()
    if kind not in _PLAIN_VALUES:
        return False
    if kind == "list_value":
        return all(_plain_value(item) for item in inner.get("values", []))
    if kind == "map_value":
        return all(_plain_value(entry["key"]) and _plain_value(entry["value"])
                   for entry in inner.get("entries", []))
    if kind == "type_value":
        return "." not in inner  # a message type's name is qualified
    return True


def _json_value(value: dict[str, Any]) -> bool:
    ((kind, inner),) = value.items()
    if kind not in _JSON_BINDINGS:
        return False
    if kind == "list_value":
        return all(_json_value(item) for item in inner.get("values", []))
    if kind == "map_value":
        return all("string_value" in entry["key"] and _json_value(entry["value"])
                   for entry in inner.get("entries", []))
    return True


def _plain_type(declared: dict[str, Any]) -> bool:
    """A declared variable type admission values can have (no messages, wrappers, time)."""
    if "primitive" in declared or "null" in declared or "dyn" in declared:
        return True
    if "list_type" in declared:
        return _plain_type(declared["list_type"]["elem_type"])
    if "map_type" in declared:
        return (_plain_type(declared["map_type"]["key_type"])
                and _plain_type(declared["map_type"]["value_type"]))
    return False


def cel_value(value: dict[str, Any]) -> Any:
    """A cel.expr.Value (protobuf JSON) as the Python value admission CEL gives back."""
    ((kind, inner),) = value.items()
    if kind == "int64_value":
        return int(inner)  # protobuf JSON writes 64-bit integers as strings
    if kind == "uint64_value":
        return Uint(inner)
    if kind == "double_value":
        # protobuf JSON writes NaN and the infinities as strings; -0 is read as text
        # (json.loads with parse_int=str) so its sign survives
        return float(inner)
    if kind == "string_value":
        return str(inner)
    if kind == "bytes_value":
        return base64.b64decode(inner)
    if kind == "bool_value":
        return bool(inner)
    if kind == "null_value":
        return None
    if kind == "list_value":
        return [cel_value(item) for item in inner.get("values", [])]
    if kind == "map_value":
        return MapValue(tuple((cel_value(entry["key"]), cel_value(entry["value"]))
                              for entry in inner.get("entries", [])))
    if kind == "type_value":
        return TypeValue(str(inner))
    raise ValueError(f"a {kind} is not a value of the admission subset")


@dataclass(frozen=True)
class MapValue:
    """An expected map, as its entries: CEL keys 1, 1u, true would collide in a dict."""

    entries: tuple[tuple[Any, Any], ...]

    def as_binding(self) -> dict[Any, Any]:
        return {key: binding_value(value) for key, value in self.entries}


def binding_value(value: Any) -> Any:
    """An expected value as a variable's value (maps as dicts)."""
    if isinstance(value, MapValue):
        return value.as_binding()
    if isinstance(value, list):
        return [binding_value(item) for item in value]
    return value


def same(expected: Any, got: Any) -> bool:
    """Whether ``got`` is the CEL value ``expected``: types must agree (1 is not 1.0 nor
    true), NaN is NaN; an int is a plain int, a uint any int (see :class:`Uint`)."""
    if isinstance(expected, Uint):
        return isinstance(got, int) and not isinstance(got, bool) and int(got) == expected
    if isinstance(expected, TypeValue):
        return type_name(got) == expected.name
    if isinstance(expected, MapValue):
        if not isinstance(got, dict) or len(got) != len(expected.entries):
            return False
        items = list(got.items())
        return all(any(same(key, k) and same(value, v) for k, v in items)
                   for key, value in expected.entries)
    if isinstance(expected, list):
        return (isinstance(got, list | tuple) and len(got) == len(expected)
                and all(same(e, g) for e, g in zip(expected, got, strict=True)))
    if isinstance(expected, bool) or expected is None:
        return got is expected
    if isinstance(expected, float):
        if type(got) is not float:
            return False
        return (math.isnan(expected) and math.isnan(got)) or expected == got
    if isinstance(expected, int):
        return type(got) is int and got == expected
    return type(got) is type(expected) and got == expected


def type_name(got: Any) -> str | None:
    """The name of a CEL type value as the runtime returns it (a type value crosses into
    Python as its name), or None when ``got`` is not one."""
    if isinstance(got, str):
        return got
    name = getattr(got, "name", None)
    return name if isinstance(name, str) else None
