"""The load-time checks of one policy: every expression, against every kind it matches.

Each finding names where it is (the YAML path of the expression), what is wrong, the part
of the expression at fault and, where one is close, a suggestion. The loader turns them
into PolicyProblems (file, line, field), so a policy that would fail on every request is
refused by ``validate``, ``test``, ``check`` and ``serve`` alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from webhook.policy.cel import CelExpression
from webhook.policy.cel_syntax import parse
from webhook.policy.checks.infer import TypeChecker
from webhook.policy.checks.schemas import ADMISSION_REQUEST, NAMESPACE, Schemas
from webhook.policy.checks.types import DYN, CelType, from_schema
from webhook.policy.model import Policy
from webhook.policy.request import KIND_GROUPS

YamlPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Slot:
    """One expression of a policy: where it is, what it must yield, what it may read."""

    path: YamlPath
    expression: CelExpression
    yields: str | None  # bool, string, int; None for a variable (any type)
    variable: str | None = None  # the variable this slot defines


@dataclass(frozen=True, slots=True)
class PolicyFinding:
    path: YamlPath
    message: str


def slots(policy: Policy) -> Iterator[Slot]:
    for i, condition in enumerate(policy.match_conditions):
        yield Slot(("spec", "matchConditions", i, "expression"), condition.expression, "bool")
    for i, variable in enumerate(policy.variables):
        path: YamlPath = ("spec", "variables", i, "expression")
        yield Slot(path, variable.expression, None, variable.name)
    for i, validation in enumerate(policy.validations):
        yield Slot(("spec", "validations", i, "expression"), validation.expression, "bool")
        if validation.message_expression is not None:
            path = ("spec", "validations", i, "messageExpression")
            yield Slot(path, validation.message_expression, "string")
    if policy.limit is not None:
        if policy.limit.where is not None:
            yield Slot(("spec", "limit", "where"), policy.limit.where, "bool")
        if policy.limit.max_expression is not None:
            yield Slot(("spec", "limit", "maxExpression"), policy.limit.max_expression, "int")


def check_policy(policy: Policy, schemas: Schemas) -> list[PolicyFinding]:
    """Every finding for ``policy``, once each, in the order of its expressions."""
    findings: list[PolicyFinding] = []
    for kind in sorted(policy.match.kinds):
        for finding in _check_kind(policy, kind, schemas):
            if finding not in findings:
                findings.append(finding)
    return findings


def root_types(kind: str, schemas: Schemas) -> dict[str, CelType]:
    """What ``object``, ``oldObject``, ``namespaceObject`` and ``request`` are for ``kind``."""
    group, version, _ = KIND_GROUPS.get(kind, ("", "", ""))
    found = schemas.schema(group, version, kind)
    obj = from_schema(found, "", kind) if found is not None else DYN
    namespace = schemas.schema(*NAMESPACE)
    request = schemas.schema(*ADMISSION_REQUEST)
    return {
        "object": obj,
        "oldObject": obj,
        "namespaceObject": from_schema(namespace, "", "Namespace") if namespace else DYN,
        "request": from_schema(request, "", "request") if request is not None else DYN,
    }


def _check_kind(policy: Policy, kind: str, schemas: Schemas) -> Iterator[PolicyFinding]:
    roots = root_types(kind, schemas)
    variables: dict[str, CelType] = {}
    for slot in slots(policy):
        checker = TypeChecker(roots, variables)
        tree = slot.expression.syntax or parse(slot.expression.source)
        result = checker.check(tree)
        for finding in checker.findings:
            yield PolicyFinding(slot.path, _located(finding.message, slot, finding.span))
        if slot.variable is not None:
            variables[slot.variable] = result
        elif slot.yields is not None and result.known and not _fits(result, slot.yields):
            what = "a validation" if slot.yields == "bool" else "this expression"
            if slot.path[-1] == "messageExpression":
                what = "a messageExpression"
            yield PolicyFinding(
                slot.path,
                _located(
                    f"{what} must yield a{'n' * (slot.yields == 'int')} {slot.yields}, "
                    f"but this one yields {result.describe()}",
                    slot,
                    None,
                ),
            )


def _fits(result: CelType, wanted: str) -> bool:
    return result.kind == wanted or (wanted == "int" and result.kind == "uint")


def _located(message: str, slot: Slot, span: tuple[int, int] | None) -> str:
    """The message, the offending part and the whole expression (on one line, shortened)."""
    source = slot.expression.source
    whole = _one_line(source)
    if span is None or (span[0] == 0 and span[1] >= len(source.rstrip())):
        return f"CEL: {message} in `{whole}`"
    part = _one_line(source[span[0] : span[1]])
    return f"CEL: {message}: `{part}` in `{whole}`"


def _one_line(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def variable_types(policy: Policy, kind: str, schemas: Schemas) -> Mapping[str, CelType]:
    """The inferred type of each of ``policy``'s variables for ``kind`` (cost estimation)."""
    roots = root_types(kind, schemas)
    variables: dict[str, CelType] = {}
    for slot in slots(policy):
        if slot.variable is not None:
            checker = TypeChecker(roots, variables)
            variables[slot.variable] = checker.check(
                slot.expression.syntax or parse(slot.expression.source)
            )
    return variables
