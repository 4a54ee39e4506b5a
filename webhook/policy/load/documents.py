"""Policy and PolicyException documents that are not policy files: exception files, cluster
objects and suite-inline exceptions, all checked by the schemas the CRDs are generated from.

A cluster object carries what the API server adds (uid, resourceVersion, managedFields,
status...); only what a file could hold is judged, so an object and the file it was applied
from load identically. Problems name the object (``PolicyException/ns/name``) instead of a
file and line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from webhook.errors import PolicyLoadError, PolicyProblem

# The loader's document checks, shared so a cluster Policy fails exactly as its file would.
from webhook.policy.load.loader import (
    STDIN,
    _load_document,
    _schema_problem,
    nesting_problem,
    policy_files,
    unloadable,
)
from webhook.policy.load.schema import API_VERSION, EXCEPTION_SCHEMA
from webhook.policy.load.yamlsource import LocatedDocument, documents_or_problem
from webhook.policy.model.exception_rules import DEFAULT_MAX_EXCEPTION_DAYS, match_all_problem
from webhook.policy.model.exceptions import ExceptionSet, PolicyException, parse_rfc3339
from webhook.policy.model.location import SourceLocation
from webhook.policy.model.policy import Policy
from webhook.policy.model.selectors import LabelSelector, Requirement

_EXCEPTION_VALIDATOR = Draft202012Validator(EXCEPTION_SCHEMA)
_FILE_METADATA = ("name", "namespace", "annotations", "labels")


def file_document(obj: Mapping[str, Any], *, namespaced: bool) -> dict[str, Any]:
    """What of a cluster object a file could hold: apiVersion, kind, spec and the metadata
    a user writes (the API server's own fields, and the status, left out)."""
    metadata = obj.get("metadata") or {}
    keep = _FILE_METADATA if namespaced else ("name", "annotations", "labels")
    document: dict[str, Any] = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {key: metadata[key] for key in keep if key in metadata},
    }
    if "spec" in obj:
        document["spec"] = obj["spec"]
    return document


def object_ref(obj: Mapping[str, Any]) -> str:
    """``Kind/name`` or ``Kind/namespace/name``: where a problem of a cluster object is."""
    metadata = obj.get("metadata") or {}
    parts = [str(obj.get("kind") or "?"), str(metadata.get("namespace") or ""),
             str(metadata.get("name") or "?")]
    return "/".join(p for p in parts if p)


def load_policy_object(obj: Mapping[str, Any], *, internal_lb_flavour: str | None = None) -> Policy:
    """A cluster ``Policy`` object, loaded as its file would be; PolicyLoadError otherwise
    (whatever went wrong: this is what the Policy controller calls)."""
    where = object_ref(obj)
    problems: list[PolicyProblem] = []
    warnings: list[PolicyProblem] = []  # cost warnings: only `validate` prints them for files
    try:
        document = LocatedDocument(data=file_document(obj, namespaced=False), line=1, lines={})
        policy = _load_document(document, where, problems, internal_lb_flavour, warnings)
    except Exception as error:  # _load_document catches its own; this is the object's shape
        problems.append(unloadable(where, None, error))
        policy = None
    if problems or policy is None:
        raise PolicyLoadError([dataclasses.replace(p, line=None) for p in problems])
    return dataclasses.replace(policy, source=SourceLocation(where))


# -- exceptions ---------------------------------------------------------------------------


def load_exceptions(*paths: str | Path) -> ExceptionSet:
    """Every PolicyException under ``paths`` (files, folders' YAML but test suites, ``-``);
    raises PolicyLoadError listing every problem, as the policy loader does."""
    problems: list[PolicyProblem] = []
    found: list[PolicyException] = []
    for raw in paths:
        for file in policy_files(Path(raw)):
            name = "<stdin>" if file == STDIN else str(file)
            try:
                text = sys.stdin.read() if file == STDIN else file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                problems.append(PolicyProblem(name, None, "file", f"cannot read: {error}"))
                continue
            found += exceptions_from_text(text, name, problems)
    _no_duplicates(found, problems)
    if problems:
        raise PolicyLoadError(problems)
    return ExceptionSet(found)


def exceptions_from_text(
    text: str, file: str, problems: list[PolicyProblem]
) -> list[PolicyException]:
    loaded = []
    for document in documents_or_problem(text, file, problems):
        exception = exception_from_document(document, file, problems)
        if exception is not None:
            loaded.append(exception)
    return loaded


def exception_from_object(obj: Mapping[str, Any]) -> PolicyException:
    """A cluster ``PolicyException`` object; PolicyLoadError naming the object otherwise
    (whatever went wrong)."""
    where = object_ref(obj)
    problems: list[PolicyProblem] = []
    try:
        document = LocatedDocument(data=file_document(obj, namespaced=True), line=1, lines={})
        exception = exception_from_document(document, where, problems)
    except Exception as error:  # exception_from_document catches its own; the object's shape
        problems.append(unloadable(where, None, error))
        exception = None
    if problems or exception is None:
        raise PolicyLoadError([dataclasses.replace(p, line=None) for p in problems])
    # The API server's creationTimestamp: where an exception's lifetime is counted from.
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    try:
        created_at = parse_rfc3339(created) if created is not None else None
    except ValueError:
        created_at = None
    return dataclasses.replace(exception, source=SourceLocation(where), created_at=created_at)


def exception_from_document(
    document: LocatedDocument, file: str, problems: list[PolicyProblem]
) -> PolicyException | None:
    """One PolicyException document, or None with its problems recorded; never raises."""
    try:
        return _checked_exception(document, file, problems)
    except Exception as error:  # RecursionError, MemoryError, a bug: refuse this one only
        problems.append(unloadable(file, document.line, error))
    return None


def _checked_exception(
    document: LocatedDocument, file: str, problems: list[PolicyProblem]
) -> PolicyException | None:
    data = document.data
    deep = nesting_problem(document, file)
    if deep is not None:
        problems.append(deep)
        return None
    if not isinstance(data, dict):
        problems.append(PolicyProblem(file, document.line, "<document>",
                                      "a PolicyException must be a mapping"))
        return None
    if data.get("kind") != "PolicyException" or data.get("apiVersion") != API_VERSION:
        problems.append(PolicyProblem(
            file, document.line_of(("kind",)), "kind",
            f"expected apiVersion {API_VERSION} kind PolicyException, found "
            f"{data.get('apiVersion')!r} {data.get('kind')!r}"))
        return None
    spec = data.get("spec")
    if isinstance(spec, dict) and "expiresAt" in spec and not isinstance(spec["expiresAt"], str):
        # YAML reads an unquoted timestamp as a datetime; the schema (and the API) want text.
        value = spec["expiresAt"]
        text = value.isoformat() if isinstance(value, dt.datetime | dt.date) else str(value)
        data = {**data, "spec": {**spec, "expiresAt": text}}
        spec = data["spec"]
    errors = sorted(_EXCEPTION_VALIDATOR.iter_errors(data),
                    key=lambda e: (len(e.absolute_path), str(e.path)))
    if errors:
        reported: set[str] = set()
        for error in errors:
            problem = _schema_problem(error, document, file)
            if error.validator == "anyOf" and tuple(error.absolute_path) == ("spec", "match"):
                problem = dataclasses.replace(
                    problem, message="an exception matches objects by names, selector or both")
            elif (error.validator == "required" and tuple(error.absolute_path) == ("spec",)
                  and "'expiresAt'" in error.message):
                problem = dataclasses.replace(
                    problem, field="spec.expiresAt",
                    message="required: every exception ends, at most "
                    f"{DEFAULT_MAX_EXCEPTION_DAYS} days after it is created unless the server "
                    "says otherwise (--max-exception-days)")
            if problem.field not in reported:
                reported.add(problem.field)
                problems.append(problem)
        return None
    assert isinstance(spec, dict)
    expires_at = None
    if "expiresAt" in spec:
        try:
            expires_at = parse_rfc3339(spec["expiresAt"])
        except ValueError as error:
            problems.append(PolicyProblem(file, document.line_of(("spec", "expiresAt")),
                                          "spec.expiresAt", str(error)))
            return None
    match = spec["match"]
    valid, selector = _selector(match.get("selector"), document, file, problems)
    if not valid:
        return None
    metadata = data["metadata"]
    return PolicyException(
        name=metadata["name"],
        namespace=metadata["namespace"],
        policies=frozenset(spec["policies"]),
        names=frozenset(match.get("names", ())),
        selector=selector,
        kinds=frozenset(match.get("kinds", ())),
        expires_at=expires_at,
        ticket=spec.get("ticket", ""),
        reason=spec.get("reason", ""),
        approved_by=spec.get("approvedBy", ""),
        source=SourceLocation(file, document.line_of(("metadata", "name"))),
    )


def _selector(
    raw: Mapping[str, Any] | None, document: LocatedDocument, file: str,
    problems: list[PolicyProblem],
) -> tuple[bool, LabelSelector | None]:
    """(valid, the selector or None without one); a problem is recorded when not valid."""
    if raw is None:
        return True, None
    requirements = []
    for i, item in enumerate(raw.get("matchExpressions", [])):
        operator, values = item["operator"], item.get("values") or []
        if (operator in ("In", "NotIn")) != bool(values):
            path = ("spec", "match", "selector", "matchExpressions", i, "values")
            problems.append(PolicyProblem(
                file, document.line_of(path), "spec.match.selector.matchExpressions"
                f"[{i}].values", f"must be {'non-empty' if values == [] else 'empty'} "
                f"for operator {operator}"))
            return False, None
        requirements.append(Requirement(item["key"], operator, frozenset(values)))
    labels = tuple(sorted((raw.get("matchLabels") or {}).items()))
    selector = LabelSelector(labels, tuple(requirements))
    match_all = match_all_problem(selector)
    if match_all is not None:
        problems.append(PolicyProblem(
            file, document.line_of(("spec", "match", "selector")), "spec.match.selector",
            match_all))
        return False, None
    return True, selector


def _no_duplicates(found: Iterable[PolicyException], problems: list[PolicyProblem]) -> None:
    seen: dict[tuple[str, str], SourceLocation] = {}
    for exception in found:
        key = (exception.namespace, exception.name)
        if key in seen:
            problems.append(PolicyProblem(
                exception.source.file, exception.source.line, "metadata.name",
                f"duplicate PolicyException {exception.ref} (first defined at {seen[key]})"))
        else:
            seen[key] = exception.source
