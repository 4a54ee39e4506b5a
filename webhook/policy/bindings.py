"""Per-expression projections: each expression reads its own narrow copy of each variable.

Converting Python values to CEL costs about a microsecond per field, so an expression that
reads ``object.spec.type`` should not pay for the annotations another policy reads. At
load, every expression is recompiled with ``object`` (and ``oldObject``,
``namespaceObject``, ``request``) renamed to a binding that stands for exactly the
subtrees it selects; a request converts each binding once, on first use, and expressions
that select the same fields share it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import cel

from webhook.policy.cel import CelExpression, rewrite_identifier
from webhook.policy.model import Limit, NamedExpression, Policy, Validation
from webhook.policy.projection import PROJECTED_VARIABLES, Projection, merge, selected_paths

BINDING_PREFIX = "ew__"


@dataclass(frozen=True, slots=True)
class Binding:
    name: str
    variable: str
    projection: Projection


class BindingPlan:
    """Rewrites policies so their expressions read projected bindings."""

    def __init__(self) -> None:
        self.bindings: dict[str, Binding] = {}
        self._names: dict[tuple[str, str], str] = {}

    def _binding(self, variable: str, projection: Projection) -> str:
        key = (variable, repr(projection))
        name = self._names.get(key)
        if name is None:
            name = f"{BINDING_PREFIX}{variable}_{len(self._names)}"
            self._names[key] = name
            self.bindings[name] = Binding(name, variable, projection)
        return name

    def expression(self, expression: CelExpression) -> CelExpression:
        source = expression.program_source or expression.source
        paths = selected_paths(source)
        variables = set(expression.variables)
        for variable in PROJECTED_VARIABLES:
            if variable not in expression.variables:
                continue
            name = self._binding(variable, merge(paths.get(variable, [()])))
            source = rewrite_identifier(source, variable, name)
            variables.discard(variable)
            variables.add(name)
        if source == (expression.program_source or expression.source):
            return expression
        program = cel.compile(source)
        return dataclasses.replace(
            expression,
            program=program,
            variables=frozenset(variables),
            program_source=source,
        )

    def _maybe(self, expression: CelExpression | None) -> CelExpression | None:
        return None if expression is None else self.expression(expression)

    def policy(self, policy: Policy) -> Policy:
        limit = policy.limit
        if limit is not None:
            limit = Limit(
                where=self._maybe(limit.where),
                max=limit.max,
                max_expression=self._maybe(limit.max_expression),
                message=limit.message,
            )
        return dataclasses.replace(
            policy,
            match_conditions=self._named(policy.match_conditions),
            variables=self._named(policy.variables),
            validations=tuple(
                Validation(
                    self.expression(v.expression), v.message, self._maybe(v.message_expression)
                )
                for v in policy.validations
            ),
            limit=limit,
        )

    def _named(self, items: Iterable[NamedExpression]) -> tuple[NamedExpression, ...]:
        return tuple(NamedExpression(i.name, self.expression(i.expression)) for i in items)
