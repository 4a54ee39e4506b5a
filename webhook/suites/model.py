"""Parsing ``PolicyTest`` documents into typed suites, with file:line errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from webhook.errors import TestSuiteError, file_line
from webhook.policy.load.schema import API_VERSION
from webhook.policy.load.yamlsource import YamlSyntaxError, read_documents
from webhook.policy.model.exceptions import parse_rfc3339

_OBJECT = {"type": ["object", "null"]}
# When a case is judged (PolicyException expiry): RFC 3339, e.g. 2030-06-01T00:00:00Z.
_AT = {"type": "string", "minLength": 1}
SUITE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": API_VERSION},
        "kind": {"const": "PolicyTest"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["cases"],
            "properties": {
                "policies": {"type": "array", "items": {"type": "string"}},
                "cluster": {"type": "array", "items": {"type": "string"}},
                # PolicyException files (relative to the suite) or inline documents.
                "exceptions": {"type": "array", "items": {"type": ["string", "object"]}},
                "at": _AT,
                "cases": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "expect"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "operation": {"enum": ["CREATE", "UPDATE", "DELETE", "CONNECT"]},
                            "namespace": {"type": "string"},
                            "object": _OBJECT,
                            "objectFile": {"type": "string"},
                            "oldObject": _OBJECT,
                            "oldObjectFile": {"type": "string"},
                            "dryRun": {"type": "boolean"},
                            "unknownNamespace": {"type": "boolean"},
                            "at": _AT,
                            "userInfo": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "username": {"type": "string"},
                                    "groups": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                            "expect": {
                                "type": "object",
                                "additionalProperties": False,
                                "minProperties": 1,
                                "properties": {
                                    "allowed": {"type": "boolean"},
                                    "violations": {"type": "array", "items": {"type": "string"}},
                                    "warnings": {
                                        "oneOf": [
                                            {"type": "integer", "minimum": 0},
                                            {"type": "array", "items": {"type": "string"}},
                                        ]
                                    },
                                    "object": {"type": "object"},
                                    "patched": {"type": "boolean"},
                                    "messageContains": {"type": "string"},
                                    "auditAnnotations": {"type": "object"},
                                    "matched": {"type": "array", "items": {"type": "string"}},
                                    "exempted": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}
_VALIDATOR = Draft202012Validator(SUITE_SCHEMA)


@dataclass(frozen=True)
class Expectation:
    allowed: bool | None = None
    violations: tuple[str, ...] | None = None
    warnings: int | tuple[str, ...] | None = None
    object: Mapping[str, Any] | None = None
    patched: bool | None = None
    message_contains: str | None = None
    audit_annotations: Mapping[str, Any] | None = None
    matched: tuple[str, ...] | None = None  # exactly the policies that apply; [] for none
    exempted: tuple[str, ...] | None = None  # exactly the policies a PolicyException held back


@dataclass(frozen=True)
class TestCase:
    name: str
    line: int
    operation: str
    namespace: str | None
    object: Mapping[str, Any] | None
    old_object: Mapping[str, Any] | None
    dry_run: bool
    username: str
    groups: tuple[str, ...]
    expect: Expectation
    unknown_namespace: bool = False  # the case is about a namespace the cluster lacks
    at: float | None = None  # when the case is judged (None: the suite's, else the run's clock)


@dataclass(frozen=True)
class TestSuite:
    name: str
    file: Path
    policy_paths: tuple[Path, ...]
    cluster_paths: tuple[Path, ...]
    cases: tuple[TestCase, ...] = field(default_factory=tuple)
    exception_paths: tuple[Path, ...] = ()
    inline_exceptions: tuple[Mapping[str, Any], ...] = ()
    at: float | None = None


def discover_suites(path: Path) -> list[Path]:
    """Suite files at ``path``: the file itself or every ``*.test.yaml`` below a folder."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise TestSuiteError(f"{path}: no such file or folder")
    return sorted({*path.rglob("*.test.yaml"), *path.rglob("*.test.yml")})


def _load_object_file(base: Path, name: str, where: str) -> Mapping[str, Any]:
    file = base / name
    try:
        documents = [d for d in yaml.safe_load_all(file.read_text(encoding="utf-8")) if d]
    except (OSError, yaml.YAMLError) as error:
        raise TestSuiteError(f"{where}: cannot read {file}: {error}") from None
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise TestSuiteError(f"{where}: {file} must hold exactly one object")
    return documents[0]


def load_suite(file: Path) -> list[TestSuite]:
    try:
        documents = list(read_documents(file.read_text(encoding="utf-8")))
    except OSError as error:
        raise TestSuiteError(f"{file}: cannot read: {error}") from None
    except YamlSyntaxError as error:
        raise TestSuiteError(f"{file_line(str(file), error.line)}: {error}") from None
    suites = []
    for document in documents:
        errors = sorted(_VALIDATOR.iter_errors(document.data), key=lambda e: len(e.absolute_path))
        if errors:
            first = errors[0]
            path = tuple(first.absolute_path)
            field_name = ".".join(str(p) for p in path) or "<document>"
            where = file_line(str(file), document.line_of(path))
            raise TestSuiteError(f"{where}: {field_name}: {first.message}")
        suites.append(_build_suite(file, document.data, document.line_of))
    return suites


def _build_suite(file: Path, data: Mapping[str, Any], line_of: Any) -> TestSuite:
    base = file.parent
    spec = data["spec"]
    # Without a list, a suite tests every policy in its folder, as a server would load them.
    policy_paths = tuple(base / p for p in spec["policies"]) if "policies" in spec else (base,)
    cluster_paths = tuple(base / p for p in spec.get("cluster", []))
    exceptions = spec.get("exceptions", [])
    exception_paths = tuple(base / e for e in exceptions if isinstance(e, str))
    inline = tuple(e for e in exceptions if isinstance(e, dict))
    suite_at = _at(spec.get("at"), file_line(str(file), line_of(("spec", "at"))))
    cases = []
    for index, raw in enumerate(spec["cases"]):
        line = line_of(("spec", "cases", index))
        where = file_line(str(file), line)
        obj = raw.get("object")
        if "objectFile" in raw:
            obj = _load_object_file(base, raw["objectFile"], where)
        old = raw.get("oldObject")
        if "oldObjectFile" in raw:
            old = _load_object_file(base, raw["oldObjectFile"], where)
        operation = raw.get("operation", "CREATE")
        if operation == "DELETE" and old is None:
            obj, old = None, obj  # a DELETE carries the object as oldObject, as the API sends it
        if operation == "UPDATE" and old is None:
            raise TestSuiteError(f"{where}: case {raw['name']!r}: UPDATE needs oldObject")
        if obj is None and old is None:
            raise TestSuiteError(f"{where}: case {raw['name']!r}: needs object or objectFile")
        expect = raw["expect"]
        warnings = expect.get("warnings")
        user = raw.get("userInfo", {})
        cases.append(
            TestCase(
                name=raw["name"],
                line=line,
                operation=operation,
                namespace=raw.get("namespace"),
                object=obj,
                old_object=old,
                dry_run=raw.get("dryRun", False),
                username=user.get("username", "edgewarden-test"),
                groups=tuple(user.get("groups", ["system:authenticated"])),
                expect=Expectation(
                    allowed=expect.get("allowed"),
                    violations=tuple(expect["violations"]) if "violations" in expect else None,
                    warnings=tuple(warnings) if isinstance(warnings, list) else warnings,
                    object=expect.get("object"),
                    patched=expect.get("patched"),
                    message_contains=expect.get("messageContains"),
                    audit_annotations=expect.get("auditAnnotations"),
                    matched=tuple(expect["matched"]) if "matched" in expect else None,
                    exempted=tuple(expect["exempted"]) if "exempted" in expect else None,
                ),
                unknown_namespace=raw.get("unknownNamespace", False),
                at=_at(raw.get("at"), where),
            )
        )
    return TestSuite(
        name=str(data["metadata"]["name"]),
        file=file,
        policy_paths=policy_paths,
        cluster_paths=cluster_paths,
        cases=tuple(cases),
        exception_paths=exception_paths,
        inline_exceptions=inline,
        at=suite_at,
    )


def _at(value: str | None, where: str) -> float | None:
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as error:
        raise TestSuiteError(f"{where}: at: {error}") from None
