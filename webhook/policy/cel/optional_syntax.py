"""Kubernetes CEL the Rust evaluator cannot run as written, rewritten into CEL it can.

* ``a.?b`` and ``a[?k]`` (cel-go's optional syntax, which the Rust parser refuses) become
  ``_optional_select(a, 'b')`` and ``_optional_index(a, k)`` (webhook/policy/cel/library/
  optionals.py), nested as written: ``a.?b.?c`` selects on the optional the first yields.
* ``cidr.ip()`` (the method) becomes ``_cidr_ip(cidr)``: the Rust binding calls a method
  ``x.f()`` as ``f(x)``, which would meet the global ``ip(string)``.
* Optional entries of list and map literals (``[a, ?b]``, ``{?k: v}``): the literal is
  built with every entry and handed to ``_optional_elements`` / ``_optional_entries``,
  which drop an entry whose optional value is none and unwrap the others.
* The two-variable comprehensions (cel-go's TwoVarComprehensions, Kubernetes 1.32+):
  ``x.all(i, v, p)``, ``exists``, ``existsOne``, ``transformList``, ``transformMap`` and
  ``transformMapEntry`` become one-variable comprehensions over ``_pairs(x)`` (the
  ``[index or key, value]`` pairs), each ``i`` read as ``_pN[0]`` and ``v`` as ``_pN[1]``.

The rewrite works on the syntax tree and its spans: only the parts that change are
replaced, everything else keeps its text (and so its meaning) exactly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from webhook.policy.cel.syntax import (
    OPTIONAL_ENTRY,
    Call,
    Comprehension,
    Expr,
    Ident,
    Index,
    ListExpr,
    MapExpr,
    Select,
    children,
    replace_spans,
    walk,
)

TWO_VARIABLE = frozenset({"all", "exists", "existsOne", "transformList", "transformMap",
                          "transformMapEntry"})


def _two_variable(node: Expr) -> bool:
    if not isinstance(node, Call) or node.target is None or node.function not in TWO_VARIABLE:
        return False
    wanted = {3, 4} if node.function.startswith("transform") else {3}
    return len(node.args) in wanted and all(isinstance(a, Ident) for a in node.args[:2])


def _cidr_ip(node: Expr) -> bool:
    return isinstance(node, Call) and node.function == "ip" and node.target is not None \
        and not node.args


def _marker(node: Expr) -> bool:
    return isinstance(node, Call) and node.function == OPTIONAL_ENTRY


def _needs(node: Expr) -> bool:
    return (isinstance(node, Select | Index) and node.optional) or _cidr_ip(node) \
        or _two_variable(node) or _marker(node)


def needs_lowering(tree: Expr) -> bool:
    return any(_needs(node) for node in walk(tree))


def lower(source: str, tree: Expr) -> str:
    """``source`` with every construct above rewritten (``source`` itself when none)."""
    if not needs_lowering(tree):
        return source
    return _Emitter(source).emit(tree, {})


class _Emitter:
    def __init__(self, source: str) -> None:
        self.source = source
        self.depth = 0  # names the pair variable of nested two-variable comprehensions

    def emit(self, node: Expr, names: Mapping[str, str]) -> str:
        """``node``'s text, rewritten, with the identifiers in ``names`` replaced."""
        if isinstance(node, Ident) and node.name in names:
            return names[node.name]
        if isinstance(node, Select) and node.optional:
            return f"_optional_select({self.emit(node.operand, names)}, {json.dumps(node.field)})"
        if isinstance(node, Index) and node.optional:
            return (f"_optional_index({self.emit(node.operand, names)}, "
                    f"{self.emit(node.index, names)})")
        if isinstance(node, Call) and _cidr_ip(node):
            assert node.target is not None
            return f"_cidr_ip({self.emit(node.target, names)})"
        if isinstance(node, Call) and _two_variable(node):
            return self.comprehension(node, names)
        if isinstance(node, ListExpr) and any(_marker(item) for item in node.items):
            items = [self.emit(self.entry(item), names) for item in node.items]
            flagged = [str(i) for i, item in enumerate(node.items) if _marker(item)]
            listed = ", ".join(f"dyn({item})" for item in items)
            return f"_optional_elements([{listed}], [{', '.join(flagged)}])"
        if isinstance(node, MapExpr) and any(_marker(key) for key, _ in node.entries):
            pairs = [(self.emit(self.entry(key), names), self.emit(value, names), _marker(key))
                     for key, value in node.entries]
            mapped = ", ".join(f"{key}: dyn({value})" for key, value, _ in pairs)
            optional = ", ".join(key for key, _, flagged in pairs if flagged)
            return f"_optional_entries({{{mapped}}}, [{optional}])"
        if _marker(node):
            raise ValueError("`?` marks an optional entry of a list or map literal only")
        start, end = node.span
        inner = []
        for child in children(node):
            scope = names
            if isinstance(node, Comprehension) and child is not node.range:
                scope = {k: v for k, v in names.items() if k != node.variable}  # shadowed
            if needs_lowering(child) or any(isinstance(n, Ident) and n.name in scope
                                            for n in walk(child)):
                inner.append(((child.span[0] - start, child.span[1] - start),
                              self.emit(child, scope)))
        return replace_spans(self.source[start:end], inner) if inner else self.source[start:end]

    @staticmethod
    def entry(node: Expr) -> Expr:
        """An optional list element or map key: the expression after its ``?``."""
        return node.args[0] if isinstance(node, Call) and _marker(node) else node

    def comprehension(self, node: Call, names: Mapping[str, str]) -> str:
        assert node.target is not None
        first, second = node.args[0], node.args[1]
        assert isinstance(first, Ident) and isinstance(second, Ident)
        pair = f"_p{self.depth}"
        self.depth += 1
        scope = {**names, first.name: f"{pair}[0]", second.name: f"{pair}[1]"}
        parts = [self.emit(arg, scope) for arg in node.args[2:]]
        self.depth -= 1
        pairs = f"_pairs({self.emit(node.target, names)})"
        body = ", ".join(parts)
        if node.function in ("all", "exists"):
            return f"{pairs}.{node.function}({pair}, {body})"
        if node.function == "existsOne":
            return f"{pairs}.exists_one({pair}, {body})"
        if node.function == "transformList":
            return f"{pairs}.map({pair}, {body})"
        if node.function == "transformMap":
            *keep, value = parts
            entry = ", ".join([*keep, f"[dyn({pair}[0]), dyn({value})]"])
            return f"_pairs_to_map({pairs}.map({pair}, {entry}))"
        return f"_merge_entries({pairs}.map({pair}, {body}))"  # transformMapEntry
