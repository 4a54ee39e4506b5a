"""What an expression refers to, read from its syntax tree with comprehension scopes.

A name bound by a comprehension (`r` in `rules.all(r, ...)`) shadows a variable of the
same name inside that comprehension only, so every question here ("which admission
variables does it read?", "which ``variables.x``?", "which functions does it call?") is
answered per scope, never by matching names in the text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from webhook.policy.cel.syntax import (
    Call,
    Comprehension,
    Expr,
    Ident,
    Index,
    Literal,
    Select,
    Span,
    children,
)

POLICY_VARIABLES = "variables"


def scoped(
    node: Expr, bound: frozenset[str] = frozenset()
) -> Iterator[tuple[Expr, frozenset[str]]]:
    """Every node below ``node`` with the comprehension variables in scope at it."""
    yield node, bound
    if isinstance(node, Comprehension):
        yield from scoped(node.range, bound)
        inner = bound | {node.variable}
        for part in node.body:
            yield from scoped(part, inner)
        return
    for child in children(node):
        yield from scoped(child, bound)


@dataclass(frozen=True, slots=True)
class References:
    free: frozenset[str]  # identifiers no comprehension binds
    policy_variables: tuple[str, ...]  # NAME of each `variables.NAME`, in order of first use
    variable_spans: tuple[tuple[str, Span], ...]  # each `variables.NAME` and where it is
    bare_variables: bool  # `variables` used other than as `variables.NAME`
    functions: tuple[str, ...]  # every function called (macros are not functions)


def references(tree: Expr) -> References:
    free: set[str] = set()
    used: list[str] = []
    spans: list[tuple[str, Span]] = []
    functions: list[str] = []
    selected: set[int] = set()  # ids of `variables` idents read as `variables.NAME`
    bare = False
    for node, bound in scoped(tree):
        if isinstance(node, Select) and _is_free(node.operand, POLICY_VARIABLES, bound):
            selected.add(id(node.operand))
            spans.append((node.field, node.span))
            if node.field not in used:
                used.append(node.field)
        elif isinstance(node, Ident) and node.name not in bound:
            free.add(node.name)
            if node.name == POLICY_VARIABLES and id(node) not in selected:
                bare = True
        elif isinstance(node, Call) and node.function not in functions:
            functions.append(node.function)
    return References(frozenset(free), tuple(used), tuple(spans), bare, tuple(functions))


def _is_free(node: Expr, name: str, bound: frozenset[str]) -> bool:
    return isinstance(node, Ident) and node.name == name and name not in bound


def literal_key(node: Expr) -> str | None:
    """The key a string literal index names, when Python reads the literal as CEL does.

    A literal with escapes is left alone (``None``): it is then treated as any key.
    """
    if isinstance(node, Literal) and node.kind == "string" and "\\" not in node.text:
        return str(node.value)
    return None


def field_chain(
    node: Expr, roots: frozenset[str], bound: frozenset[str]
) -> tuple[str, tuple[str, ...]] | None:
    """``(root, path)`` when ``node`` is ``root.a.b`` or ``root.a['b']`` on a free ``root``."""
    path: list[str] = []
    current = node
    while True:
        if isinstance(current, Select):
            path.append(current.field)
            current = current.operand
        elif isinstance(current, Index) and (key := literal_key(current.index)) is not None:
            path.append(key)
            current = current.operand
        else:
            break
    if not path or not isinstance(current, Ident):
        return None
    if current.name not in roots or current.name in bound:
        return None
    return current.name, tuple(reversed(path))


def is_chain_step(node: Expr) -> bool:
    """Whether ``node`` extends a field chain (a selection or a literal-key index)."""
    return isinstance(node, Select) or (
        isinstance(node, Index) and literal_key(node.index) is not None
    )
