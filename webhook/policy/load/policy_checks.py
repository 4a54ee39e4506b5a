"""The load-time checks of one policy: every expression, against every kind it matches.

Each finding names where it is (the YAML path of the expression), what is wrong, the part
of the expression at fault and, where one is close, a suggestion. The loader turns them
into PolicyProblems (file, line, field), so a policy that would fail on every request is
refused by ``validate``, ``test``, ``check`` and ``serve`` alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from webhook.policy.blocks.protocol import Slot
from webhook.policy.blocks.registry import slots
from webhook.policy.cel.checks.cost import (
    EXPRESSION_LIMIT,
    EXPRESSION_WARNING,
    POLICY_LIMIT,
    POLICY_WARNING,
    CostEstimator,
)
from webhook.policy.cel.checks.infer import TypeChecker
from webhook.policy.cel.checks.infer import guards as policy_guards
from webhook.policy.cel.checks.schemas import ADMISSION_REQUEST, NAMESPACE, Schemas
from webhook.policy.cel.checks.types import DYN, CelType, from_schema
from webhook.policy.cel.syntax import parse
from webhook.policy.model.kinds import SHORT_NAMES, KindRef
from webhook.policy.model.policy import Policy

YamlPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class PolicyFinding:
    path: YamlPath
    message: str
    warning: bool = False


@dataclass(frozen=True, slots=True)
class PolicyChecks:
    """What the checks found: errors refuse the policy, warnings are reported."""

    errors: list[PolicyFinding]
    warnings: list[PolicyFinding]
    cost: PolicyCost | None  # None when type errors make an estimate meaningless


def check_policy(policy: Policy, schemas: Schemas) -> PolicyChecks:
    """Every finding for ``policy``, once each, in the order of its expressions."""
    findings: list[PolicyFinding] = []
    noted: list[PolicyFinding] = []
    for ref in policy.match.resources:
        for finding in _check_kind(policy, ref, schemas):
            chosen = noted if finding.warning else findings
            if finding not in chosen:
                chosen.append(finding)
    if findings:
        return PolicyChecks(findings, noted, None)
    cost = estimate_policy(policy, schemas)
    errors, warnings = cost_findings(cost)
    return PolicyChecks(errors, noted + warnings, cost)


def root_types(kind: str | KindRef, schemas: Schemas) -> dict[str, CelType]:
    """What ``object``, ``oldObject``, ``namespaceObject`` and ``request`` are for ``kind``
    (a short name or a ref); a kind no schema describes is dynamic."""
    ref = SHORT_NAMES.get(kind) if isinstance(kind, str) else kind
    found = schemas.schema(ref.group, ref.version, ref.kind) if ref is not None else None
    obj = from_schema(found, "", ref.kind) if found is not None and ref is not None else DYN
    namespace = schemas.schema(*NAMESPACE)
    request = schemas.schema(*ADMISSION_REQUEST)
    return {
        "object": obj,
        "oldObject": obj,
        "namespaceObject": from_schema(namespace, "", "Namespace") if namespace else DYN,
        "request": from_schema(request, "", "request") if request is not None else DYN,
    }


def _check_kind(policy: Policy, kind: KindRef, schemas: Schemas) -> Iterator[PolicyFinding]:
    roots = root_types(kind, schemas)
    variables: dict[str, CelType] = {}
    # What any expression of the policy tests (has(), `in`): variables are read lazily, and
    # matchConditions run first, so a read guarded anywhere in the policy is guarded.
    guards = {guard for slot in slots(policy)
              for guard in policy_guards(slot.expression.syntax or parse(slot.expression.source))}
    for slot in slots(policy):
        checker = TypeChecker(roots, variables, kind.kind, guards)
        tree = slot.expression.syntax or parse(slot.expression.source)
        result = checker.check(tree)
        for finding in checker.findings:
            yield PolicyFinding(slot.path, _located(finding.message, slot, finding.span),
                                finding.warning)
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
    source = slot.expression.analysed_source or slot.expression.source  # what spans index
    whole = _one_line(slot.expression.source)
    if span is None or (span[0] == 0 and span[1] >= len(source.rstrip())):
        return f"CEL: {message} in `{whole}`"
    part = _one_line(source[span[0] : span[1]])
    return f"CEL: {message}: `{part}` in `{whole}`"


def _one_line(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class PolicyCost:
    """A policy's estimated worst-case cost per expression (by YAML path) and in total,
    over the kinds it matches, and the sizes assumed for unbounded inputs."""

    expressions: tuple[tuple[YamlPath, float], ...]
    total: float
    assumed: tuple[tuple[str, int], ...]


def estimate_policy(policy: Policy, schemas: Schemas) -> PolicyCost:
    """The worst case over the matched kinds. Variables count once: they are computed at
    most once per admission, however many expressions read them."""
    worst: dict[YamlPath, float] = {}
    assumed: dict[str, int] = {}
    for ref in policy.match.resources:
        roots = root_types(ref, schemas)
        types: dict[str, CelType] = {}
        sizes: dict[str, float] = {}
        for slot in slots(policy):
            tree = slot.expression.syntax or parse(slot.expression.source)
            estimator = CostEstimator(roots, types, sizes, ref.kind)
            estimate = estimator.estimate(tree)
            worst[slot.path] = max(worst.get(slot.path, 0.0), estimate.cost)
            assumed.update(estimate.assumed)
            if slot.variable is not None:
                types[slot.variable] = estimator.types.check(tree)
                sizes[slot.variable] = estimator.size(tree, {})
    expressions = tuple(worst.items())
    return PolicyCost(expressions, sum(worst.values()), tuple(sorted(assumed.items())))


def cost_findings(cost: PolicyCost) -> tuple[list[PolicyFinding], list[PolicyFinding]]:
    """(errors, warnings): expressions and policies over the budgets (checks/cost.py)."""
    errors: list[PolicyFinding] = []
    warnings: list[PolicyFinding] = []
    assumed = ", ".join(f"{n} {v}" for n, v in cost.assumed) or "schema bounds"
    for path, value in cost.expressions:
        if value > EXPRESSION_WARNING:
            over = value > EXPRESSION_LIMIT
            limit = EXPRESSION_LIMIT if over else EXPRESSION_WARNING
            message = (
                f"CEL: estimated worst-case cost {value:,.0f} is over "
                f"{'the limit' if over else 'the per-evaluation budget'} {limit:,} "
                f'(assuming at most {assumed}); see docs/policies.md "Cost"'
            )
            (errors if over else warnings).append(PolicyFinding(path, message))
    if cost.total > POLICY_WARNING:
        over = cost.total > POLICY_LIMIT
        limit = POLICY_LIMIT if over else POLICY_WARNING
        message = (
            f"CEL: estimated worst-case cost of the policy {cost.total:,.0f} is over "
            f"{'the limit' if over else 'the per-admission budget'} {limit:,} "
            f'(assuming at most {assumed}); see docs/policies.md "Cost"'
        )
        (errors if over else warnings).append(PolicyFinding(("metadata", "name"), message))
    return errors, warnings
