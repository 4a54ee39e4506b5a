"""Webhook-level ``matchConditions`` (admissionregistration/v1, GA since Kubernetes 1.30):
the API server evaluates them before calling us, so a request no policy could act on never
makes the hop. ``/mutate`` is then called for a LoadBalancer Service (the only thing the
shipped mutation touches), not for every Service.

The condition is built from the loaded policies, never copied from them. A policy's own
``matchConditions`` run in edgewarden's CEL environment (its functions, its error rules); in
the API server an expression that fails applies the *webhook's* failurePolicy, which for a
``failurePolicy: Ignore`` policy would refuse what edgewarden admits. So:

* each policy contributes one term: its kinds and operations, and, when one of its match
  conditions is exactly ``has(object.a.b) && object.a.b == 'literal'`` (or ``in [literals]``),
  that field test, rewritten so it cannot fail (every step of the path tested with ``has``,
  only for CREATE and UPDATE, where ``object`` is never null);
* every other match condition is left out, which makes the term broader, never narrower: a
  request the condition lets through is judged by the server as before;
* the webhook's condition is the OR of the terms. When no term has a field test, the
  condition would only repeat the rules, so none is rendered (no cost in the API server).

A too-broad condition costs a hop; a too-narrow one would skip a policy, so anything not
recognised exactly is widened, not guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from webhook.policy.model.policy import Policy, PolicySet

CONDITION_NAME = "edgewarden-policies-match"
# Operations on which the API server always sends a non-null ``object``.
_OBJECT_OPERATIONS = frozenset({"CREATE", "UPDATE"})
_PATH = r"object(?:\.[A-Za-z_][A-Za-z0-9_]*)+"
_STRING = r"'[^'\\]*'|\"[^\"\\]*\""
_EQUALS = re.compile(
    rf"^has\((?P<guard>{_PATH})\)\s*&&\s*(?P<path>{_PATH})\s*==\s*(?P<value>{_STRING})$"
)
_IN = re.compile(
    rf"^has\((?P<guard>{_PATH})\)\s*&&\s*(?P<path>{_PATH})\s+in\s+"
    rf"\[(?P<values>\s*(?:{_STRING})(?:\s*,\s*(?:{_STRING}))*\s*,?\s*)\]$"
)


@dataclass(frozen=True)
class FieldTest:
    """``object.<path>`` is present and one of ``values`` (strings)."""

    path: tuple[str, ...]
    values: tuple[str, ...]

    def cel(self) -> str:
        steps = [f"has(object.{'.'.join(self.path[:i])})" for i in range(1, len(self.path) + 1)]
        field = "object." + ".".join(self.path)
        if len(self.values) == 1:
            test = f"{field} == {_quote(self.values[0])}"
        else:
            test = f"{field} in [{', '.join(_quote(v) for v in self.values)}]"
        return " && ".join([*steps, test])


def field_test(expression: str) -> FieldTest | None:
    """The exact field test ``expression`` is, or None when it is anything else."""
    text = " ".join(expression.split())
    match = _EQUALS.match(text) or _IN.match(text)
    if match is None or match["guard"] != match["path"]:
        return None
    single = match.groupdict().get("value")
    values = ((single[1:-1],) if single is not None
              else tuple(v[1:-1] for v in re.findall(_STRING, match["values"])))
    return FieldTest(tuple(match["path"].split(".")[1:]), values)


def _quote(value: str) -> str:
    # Values come from the literals above: no quote or backslash inside.
    return f"'{value}'"


@dataclass(frozen=True)
class Term:
    """A request of ``kinds`` and ``operations`` that passes every field test."""

    operations: frozenset[str]
    kinds: frozenset[str]
    tests: tuple[FieldTest, ...]

    def within(self, other: Term) -> bool:
        """Every request this term lets through, ``other`` (a term with no field test)
        lets through too."""
        return (not other.tests and self.operations <= other.operations
                and self.kinds <= other.kinds)

    def cel(self) -> str:
        parts = [
            f"request.operation in [{', '.join(_quote(o) for o in sorted(self.operations))}]",
            f"request.kind.kind in [{', '.join(_quote(k) for k in sorted(self.kinds))}]",
            *(test.cel() for test in self.tests),
        ]
        return "(" + " && ".join(parts) + ")"


def policy_term(policy: Policy) -> Term:
    """When a request may concern ``policy``: its kinds and operations, and the field tests
    among its match conditions that are exact (the others are left out: broader)."""
    operations = frozenset(policy.match.operations)
    tests: tuple[FieldTest, ...] = ()
    if operations <= _OBJECT_OPERATIONS:  # DELETE and CONNECT carry no object
        tests = tuple(t for named in policy.match_conditions
                      if (t := field_test(named.expression.source)) is not None)
    return Term(operations, frozenset(ref.kind for ref in policy.match.resources), tests)


def match_conditions(policies: PolicySet, *, mutating: bool) -> list[dict[str, Any]]:
    """The webhook's matchConditions for the policies that need it; [] when it would only
    repeat the rules (no field test left once terms within broader ones are dropped)."""
    terms: list[Term] = []
    for policy in policies.policies:
        if policy.mutates if mutating else policy.validates:
            term = policy_term(policy)
            if term not in terms:
                terms.append(term)
    kept = [t for t in terms if not any(t is not o and t.within(o) for o in terms)]
    if not any(term.tests for term in kept):
        return []
    return [{"name": CONDITION_NAME, "expression": " || ".join(t.cel() for t in kept)}]
