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
import re
from collections.abc import Iterable
from dataclasses import dataclass

import cel

from webhook.policy.cel import CelExpression, _split_literals, rewrite_identifier
from webhook.policy.model import Limit, NamedExpression, Policy, Validation
from webhook.policy.projection import PROJECTED_VARIABLES, Projection, merge, selected_paths

BINDING_PREFIX = "ew__"


@dataclass(frozen=True, slots=True)
class Binding:
    """One CEL name a request binds: a projected variable, a field's value, or a has() test.

    ``path`` None: the whole (projected) variable. Otherwise the value at ``path`` (projected
    below it), or with ``presence`` whether the last key of ``path`` exists. A path that
    cannot be walked is left unbound, so reading it fails exactly where CEL would fail.
    """

    name: str
    variable: str
    projection: Projection
    path: tuple[str, ...] | None = None
    presence: bool = False


_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def _field_chain(variable: str) -> re.Pattern[str]:
    """``has(variable.a.b)`` or ``variable.a.b`` (plain selections only, not calls)."""
    return re.compile(
        r"(?P<has>(?<![\w.])has\(\s*)?(?<![\w.?])"
        + variable
        + r"(?P<path>(?:\s*\.\s*"
        + _IDENT
        + r"\b(?!\s*\())+)(?P<close>\s*\))?"
    )


class BindingPlan:
    """Rewrites policies so their expressions read flat, projected bindings."""

    def __init__(self) -> None:
        self.bindings: dict[str, Binding] = {}
        self._names: dict[tuple[object, ...], str] = {}

    def _binding(
        self,
        variable: str,
        projection: Projection,
        path: tuple[str, ...] | None = None,
        presence: bool = False,
    ) -> str:
        key = (variable, repr(projection), path, presence)
        name = self._names.get(key)
        if name is None:
            name = f"{BINDING_PREFIX}{variable}_{len(self._names)}"
            self._names[key] = name
            self.bindings[name] = Binding(name, variable, projection, path, presence)
        return name

    def expression(self, expression: CelExpression) -> CelExpression:
        original = expression.program_source or expression.source
        paths = selected_paths(original)
        names: set[str] = set()
        display: dict[str, str] = {}
        source = original
        for variable in PROJECTED_VARIABLES:
            if variable not in expression.variables:
                continue
            projection = merge(paths.get(variable, [()]))
            source = self._flatten(source, variable, projection, names, display)
            if re.search(r"(?<![\w.?])" + variable + r"\b", _code_only(source)):
                # Some use is not a plain field selection (the bare variable, an index,
                # an optional field): bind the projected variable itself for those.
                name = self._binding(variable, projection)
                source = rewrite_identifier(source, variable, name)
                names.add(name)
                display[name] = variable
        if source == original:
            return expression
        plain = {v for v in expression.variables if v not in PROJECTED_VARIABLES}
        return dataclasses.replace(
            expression,
            program=cel.compile(source),
            variables=frozenset(plain | names),
            program_source=source,
            display=tuple(display.items()),
        )

    def _flatten(
        self,
        source: str,
        variable: str,
        projection: Projection,
        names: set[str],
        display: dict[str, str],
    ) -> str:
        pattern = _field_chain(variable)

        def replace(match: re.Match[str]) -> str:
            path = tuple(re.findall(_IDENT, match.group("path")))
            text = variable + "." + ".".join(path)
            if match.group("has") and match.group("close"):
                name = self._binding(variable, None, path, presence=True)
                display[name] = f"has({text})"
                names.add(name)
                return name
            name = self._binding(variable, _below(projection, path), path)
            display[name] = text
            names.add(name)
            return (match.group("has") or "") + name + (match.group("close") or "")

        return "".join(
            text if is_literal else pattern.sub(replace, text)
            for is_literal, text in _split_literals(source)
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


def _below(projection: Projection, path: tuple[str, ...]) -> Projection:
    node = projection
    for segment in path:
        if node is None:
            return None
        node = node.get(segment)
        if node is None:
            return None
    return node


def _code_only(source: str) -> str:
    return "".join(text for is_literal, text in _split_literals(source) if not is_literal)
