"""Per-expression projections: each expression reads its own narrow copy of each variable.

Converting Python values to CEL costs about a microsecond per field, so an expression that
reads ``object.spec.type`` should not pay for the annotations another policy reads. At
load, every expression is recompiled with each field chain (``object.spec.type``,
``has(object.spec.type)``, ``object.metadata.annotations['k']``) replaced by one flat
binding that stands for exactly that value (projected below it) or presence test, and any
other use of ``object`` (and ``oldObject``, ``namespaceObject``, ``request``) by a binding
of the projected variable. A request converts each binding once, on first use, and
expressions that select the same fields share it. The rewrite replaces spans of the
syntax tree, so string literals and comprehension variables are never touched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from webhook.policy.cel.expression import CelExpression, compile_source
from webhook.policy.cel.projection import PROJECTED_VARIABLES, Projection, merge, paths_of
from webhook.policy.cel.references import field_chain, is_chain_step, scoped
from webhook.policy.cel.runtime import Program
from webhook.policy.cel.syntax import Expr, Has, Ident, Span, children, parse, replace_spans
from webhook.policy.model.policy import NamedExpression, Policy

BINDING_PREFIX = "ew__"
_ROOTS = frozenset(PROJECTED_VARIABLES)


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


class BindingPlan:
    """Rewrites policies so their expressions read flat, projected bindings."""

    def __init__(self) -> None:
        self.bindings: dict[str, Binding] = {}
        # The names bound since ``reads`` was last emptied (the compiler empties it before
        # each policy, so it learns which bindings each policy's expressions read).
        self.reads: set[str] = set()
        self._names: dict[tuple[object, ...], str] = {}
        # program source -> its program: expressions written alike in many policies share
        # one, so a request runs it once (runtime.SharedActivation keeps its outcome)
        self._programs: dict[str, Program] = {}

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
        self.reads.add(name)
        return name

    def expression(self, expression: CelExpression) -> CelExpression:
        reads = expression.variables & _ROOTS
        if not reads:
            return expression
        source = expression.analysed_source or expression.source  # what the tree spans
        tree = expression.syntax if expression.syntax is not None else parse(source)
        paths = paths_of(tree)
        projections = {v: merge(paths.get(v, [()])) for v in reads}
        replacements: list[tuple[Span, str]] = [
            (span, expression.binding_prefix + name) for name, span in expression.variable_spans
        ]
        names: set[str] = set()
        display: dict[str, str] = {}
        for span, variable, projection, path, presence in _uses(tree, reads, projections):
            name = self._binding(variable, projection, path, presence)
            replacements.append((span, name))
            names.add(name)
            display[name] = source[span[0] : span[1]]
        program_source = replace_spans(source, replacements)
        plain = {v for v in expression.variables if v not in _ROOTS}
        return dataclasses.replace(
            expression,
            program=self._program(program_source),
            variables=frozenset(plain | names),
            program_source=program_source,
            display=tuple(display.items()),
        )

    def _program(self, source: str) -> Program:
        program = self._programs.get(source)
        if program is None:
            program = self._programs[source] = compile_source(source)
        return program

    def policy(self, policy: Policy) -> Policy:
        """``policy`` with its matchConditions and variables rewritten; each block rewrites
        its own expressions as it compiles (``expression`` is what it is given)."""
        return dataclasses.replace(
            policy,
            match_conditions=self._named(policy.match_conditions),
            variables=self._named(policy.variables),
        )

    def _named(self, items: Iterable[NamedExpression]) -> tuple[NamedExpression, ...]:
        return tuple(NamedExpression(i.name, self.expression(i.expression)) for i in items)


_Use = tuple[Span, str, Projection, tuple[str, ...] | None, bool]


def _uses(tree: Expr, roots: frozenset[str], projections: dict[str, Projection]) -> list[_Use]:
    """Each span to replace: a has() of a chain, a maximal chain, or a bare variable."""
    found: list[_Use] = []
    covered: set[int] = set()  # nodes inside a span already replaced
    extended: set[int] = set()  # chain nodes a longer chain continues
    for node, bound in scoped(tree):
        if id(node) in covered:
            continue
        if is_chain_step(node):
            extended.add(id(children(node)[0]))  # `object.spec` in `object.spec.type`
        if isinstance(node, Has):
            chain = field_chain(node.target, roots, bound)
            if chain is not None:
                variable, path = chain
                found.append((node.span, variable, None, path, True))
                covered.update(id(n) for n, _ in scoped(node))
            continue
        chain = field_chain(node, roots, bound) if id(node) not in extended else None
        if chain is not None:
            variable, path = chain
            below = _below(projections[variable], path)
            found.append((node.span, variable, below, path, False))
            covered.update(id(n) for n, _ in scoped(node))
        elif isinstance(node, Ident) and node.name in roots and node.name not in bound:
            found.append((node.span, node.name, projections[node.name], None, False))
    return found


def _below(projection: Projection, path: tuple[str, ...]) -> Projection:
    node = projection
    for segment in path:
        if node is None:
            return None
        node = node.get(segment)
        if node is None:
            return None
    return node
