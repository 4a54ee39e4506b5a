"""Kubernetes CEL the Rust evaluator cannot run as written, rewritten into CEL it can.

* ``a.?b`` and ``a[?k]`` (cel-go's optional syntax, which the Rust parser refuses) become
  ``_optional_select(a, 'b')`` and ``_optional_index(a, k)`` (webhook/policy/cel/library/
  optionals.py), nested as written: ``a.?b.?c`` selects on the optional the first yields.
* ``cidr.ip()`` (the method) becomes ``_cidr_ip(cidr)``: the Rust binding calls a method
  ``x.f()`` as ``f(x)``, which would meet the global ``ip(string)``.

The rewrite works on the syntax tree and its spans: only the parts that change are
replaced, everything else keeps its text (and so its meaning) exactly.
"""

from __future__ import annotations

import json

from webhook.policy.cel.syntax import Call, Expr, Index, Select, children, replace_spans, walk


def _needs(node: Expr) -> bool:
    return (isinstance(node, Select | Index) and node.optional) or _cidr_ip(node)


def _cidr_ip(node: Expr) -> bool:
    return isinstance(node, Call) and node.function == "ip" and node.target is not None \
        and not node.args


def needs_lowering(tree: Expr) -> bool:
    return any(_needs(node) for node in walk(tree))


def lower(source: str, tree: Expr) -> str:
    """``source`` with every optional selection, optional index and ``cidr.ip()`` rewritten
    (``source`` itself when there is none)."""
    if not needs_lowering(tree):
        return source
    return _text(source, tree)


def _text(source: str, node: Expr) -> str:
    if isinstance(node, Select) and node.optional:
        return f"_optional_select({_text(source, node.operand)}, {json.dumps(node.field)})"
    if isinstance(node, Index) and node.optional:
        return f"_optional_index({_text(source, node.operand)}, {_text(source, node.index)})"
    if isinstance(node, Call) and _cidr_ip(node):
        assert node.target is not None
        return f"_cidr_ip({_text(source, node.target)})"
    start, end = node.span
    changed = [child for child in children(node) if needs_lowering(child)]
    if not changed:
        return source[start:end]
    inner = [((c.span[0] - start, c.span[1] - start), _text(source, c)) for c in changed]
    return replace_spans(source[start:end], inner)
