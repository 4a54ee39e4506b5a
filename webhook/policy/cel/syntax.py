"""CEL source as a small typed syntax tree with source spans.

Every analysis of an expression (which variables and fields it reads, which functions it
calls, its type and cost) and every rewrite of it (policy variables and field selections
turned into flat bindings) works on this one tree. The grammar is cel-python's Lark
grammar (``celpy``); this module only turns Lark's concrete tree into the nodes we reason
about, each carrying the ``[start, end)`` character span it covers in the source, so a
rewrite is a span replacement and never a regex over the text.

The grammar and parser settings are cel-python's (``celpy.celparser.CELParser``), with
three fixes where its grammar lags the CEL specification (``_SPEC_FIXES``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeAlias

from celpy import celparser
from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedInput

Span: TypeAlias = tuple[int, int]

# The comprehension macros: `range.macro(variable, body...)`.
MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
# Functions cel-go (and the Rust binding) spell with a namespace: `math.greatest(x)`.
NAMESPACES = frozenset({"math", "sets", "base64", "lists", "strings", "optional", "format"})
# Namespaced functions whose namespace is also a function name (``ip('...')``): only these
# calls are read as namespaced, so a comprehension variable named ``ip`` stays a variable.
QUALIFIED = frozenset({"ip.isCanonical"})
# The marker of an optional list element or map key (`[?x]`, `{?k: v}`) in the parsed tree.
OPTIONAL_ENTRY = "?"


class CelSyntaxError(ValueError):
    """The source is not CEL; ``position`` is the character offset, when known."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


@dataclass(frozen=True, slots=True)
class Ident:
    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class Select:
    """``operand.field``."""

    operand: Expr
    field: str
    span: Span
    optional: bool = False  # ``operand.?field``: an optional, none when the field is absent


@dataclass(frozen=True, slots=True)
class Index:
    """``operand[index]``."""

    operand: Expr
    index: Expr
    span: Span
    optional: bool = False  # ``operand[?index]``


@dataclass(frozen=True, slots=True)
class Has:
    """``has(operand.field)``: a presence test, not a read of the value."""

    target: Select
    span: Span


@dataclass(frozen=True, slots=True)
class Call:
    """``function(args)`` or, with ``target``, ``target.function(args)``.

    A namespaced function (``math.greatest(x)``) is a global call named ``math.greatest``.
    """

    function: str
    args: tuple[Expr, ...]
    target: Expr | None
    span: Span


@dataclass(frozen=True, slots=True)
class Comprehension:
    """``range.macro(variable, body...)``: all, exists, exists_one, map, filter."""

    macro: str
    range: Expr
    variable: str
    body: tuple[Expr, ...]  # the predicate, or map's (transform) / (filter, transform)
    span: Span


@dataclass(frozen=True, slots=True)
class Operator:
    """An operator, named as CEL names its overloads: ``_&&_``, ``!_``, ``@in``, ``_?_:_``."""

    op: str
    args: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any
    kind: str  # int, uint, double, string, bytes, bool, null
    span: Span
    text: str  # as written; ``value`` is what cel-go reads it as (escapes decoded)


@dataclass(frozen=True, slots=True)
class ListExpr:
    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class MapExpr:
    entries: tuple[tuple[Expr, Expr], ...]
    span: Span


@dataclass(frozen=True, slots=True)
class StructExpr:
    """``Type{field: value}``: message construction (no message types exist here)."""

    type_name: str
    fields: tuple[tuple[str, Expr], ...]
    span: Span


Expr: TypeAlias = (
    Ident
    | Select
    | Index
    | Has
    | Call
    | Comprehension
    | Operator
    | Literal
    | ListExpr
    | MapExpr
    | StructExpr
)


def children(node: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of ``node``, in source order."""
    if isinstance(node, Select):
        return (node.operand,)
    if isinstance(node, Index):
        return (node.operand, node.index)
    if isinstance(node, Has):
        return (node.target,)
    if isinstance(node, Call):
        return node.args if node.target is None else (node.target, *node.args)
    if isinstance(node, Comprehension):
        return (node.range, *node.body)
    if isinstance(node, Operator | ListExpr):
        return node.args if isinstance(node, Operator) else node.items
    if isinstance(node, MapExpr):
        return tuple(part for entry in node.entries for part in entry)
    if isinstance(node, StructExpr):
        return tuple(value for _, value in node.fields)
    return ()


def walk(node: Expr) -> Iterator[Expr]:
    """``node`` and every expression below it, parents before children."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


@lru_cache(maxsize=4096)
def parse(source: str) -> Expr:
    """The syntax tree of ``source`` (cached: policies are parsed at load, often twice)."""
    try:
        tree = _lark().parse(source)
    except UnexpectedInput as error:
        position = getattr(error, "pos_in_stream", None)
        context = error.get_context(source).rstrip()
        raise CelSyntaxError(
            f"does not parse at line {error.line} column {error.column}: {context}", position
        ) from None
    except LarkError as error:
        raise CelSyntaxError(f"does not parse: {str(error).splitlines()[0]}") from None
    return _Builder(source).expr(tree)


def replace_spans(source: str, replacements: list[tuple[Span, str]]) -> str:
    """``source`` with each span replaced; spans must not overlap."""
    pieces: list[str] = []
    position = 0
    for (start, end), text in sorted(replacements):
        if start < position:
            raise ValueError(f"overlapping rewrite at {start}")
        pieces.append(source[position:start])
        pieces.append(text)
        position = end
    pieces.append(source[position:])
    return "".join(pieces)


# Where cel-python's grammar is narrower than the CEL specification (and the Rust binding):
# a trailing comma in a list or map literal, and `0.size()` (its float literal accepts
# "0.", which CEL's does not). Each fix must apply, or the grammar changed under us.
_SPEC_FIXES = (
    ('exprlist       : expr ("," expr)*', 'exprlist       : expr ("," expr)* [","]'),
    # ... and cel-go's optional entries: `[a, ?b]`, `{?k: v}` (`?` marks an optional value).
    (
        'mapinits       : expr ":" expr ("," expr ":" expr)*',
        'mapinits       : mapkey ":" expr ("," mapkey ":" expr)* [","]\n'
        "?mapkey        : expr | optional_entry\n"
        'optional_entry : "?" expr',
    ),
    (
        'list_lit       : "[" [exprlist] "]"',
        'list_lit       : "[" [listitems] "]"\n'
        'listitems      : listitem ("," listitem)* [","]\n'
        "?listitem      : expr | optional_entry",
    ),
    ('FLOAT_LIT      : /-?/ DIGIT+ "." DIGIT* EXPONENT? | ', "FLOAT_LIT      : "),
    # CEL's optional field selection and index (cel-go's OptionalTypes): `a.?b`, `a[?k]`.
    (
        "member         : member_dot | member_dot_arg | member_index | member_object | primary",
        "member         : member_dot | member_dot_arg | member_index | member_object"
        " | member_dot_opt | member_index_opt | primary\n"
        'member_dot_opt : member "." "?" IDENT\n'
        'member_index_opt : member "[" "?" expr "]"',
    ),
)


def _positioned_literals(token: Token) -> Token:
    """CELParser's identifier callback, except that ``true``/``false`` keep their position
    (it re-types them with a fresh Token, which drops it; span rewrites need it)."""
    if token.value in ("true", "false"):
        return Token.new_borrow_pos("BOOL_LIT", token.value, token)
    return token


@lru_cache(maxsize=1)
def _lark() -> Lark:
    """cel-python's grammar and parser settings (as CELParser builds them), with the fixes."""
    grammar = (Path(celparser.__file__).parent / "cel.lark").read_text(encoding="utf-8")
    for old, new in _SPEC_FIXES:
        if old not in grammar:
            raise RuntimeError(f"cel-python's grammar changed: {old!r} not found")
        grammar = grammar.replace(old, new)
    return Lark(
        grammar,
        parser="lalr",
        start="expr",
        g_regex_flags=re.M,
        lexer_callbacks={"IDENT": _positioned_literals},
        propagate_positions=True,
        maybe_placeholders=False,
        priority="invert",
    )


_RELATIONS = {
    "relation_lt": "_<_",
    "relation_le": "_<=_",
    "relation_gt": "_>_",
    "relation_ge": "_>=_",
    "relation_eq": "_==_",
    "relation_ne": "_!=_",
    "relation_in": "@in",
    "addition_add": "_+_",
    "addition_sub": "_-_",
    "multiplication_mul": "_*_",
    "multiplication_div": "_/_",
    "multiplication_mod": "_%_",
}


class _Builder:
    """Lark's concrete tree (one rule per precedence level) to our nodes."""

    def __init__(self, source: str) -> None:
        self.source = source

    def span(self, tree: Tree[Token] | Token) -> Span:
        if isinstance(tree, Token):
            assert tree.start_pos is not None and tree.end_pos is not None
            return (tree.start_pos, tree.end_pos)
        return (tree.meta.start_pos, tree.meta.end_pos)

    def expr(self, tree: Tree[Token]) -> Expr:
        tree = _unnest(tree)
        name = tree.data
        kids: list[Any] = tree.children
        span = self.span(tree)
        if name == "expr":
            return Operator("_?_:_", tuple(self.expr(k) for k in kids), span)
        if name in ("conditionalor", "conditionaland"):
            return self.chain(tree)
        if name in ("relation", "addition", "multiplication"):
            left = kids[0]  # relation_eq(relation), addition_add(addition)...
            return Operator(
                _RELATIONS[left.data], (self.expr(left.children[0]), self.expr(kids[1])), span
            )
        if name == "unary":
            return self.unary(tree)
        if name == "member_dot":
            return Select(self.expr(kids[0]), str(kids[1]), span)
        if name == "member_dot_arg":
            return self.method(self.expr(kids[0]), str(kids[1]), self.args(kids[2:]), span)
        if name == "member_index":
            return Index(self.expr(kids[0]), self.expr(kids[1]), span)
        if name == "member_dot_opt":
            return Select(self.expr(kids[0]), str(kids[1]), span, optional=True)
        if name == "member_index_opt":
            return Index(self.expr(kids[0]), self.expr(kids[1]), span, optional=True)
        if name == "member_object":
            fields = kids[1].children if len(kids) > 1 else []
            pairs = tuple(
                (str(fields[i]), self.expr(fields[i + 1])) for i in range(0, len(fields), 2)
            )
            return StructExpr(self.source[span[0] : self.span(kids[0])[1]], pairs, span)
        if name in ("ident_arg", "dot_ident_arg"):
            function, args = str(kids[0]), self.args(kids[1:])
            if function == "has" and len(args) == 1 and isinstance(args[0], Select):
                return Has(args[0], span)
            return Call(function, args, None, span)
        if name in ("ident", "dot_ident"):
            return Ident(str(kids[0]), self.span(kids[0]))
        if name == "list_lit":
            listed = kids[0].children if kids and isinstance(kids[0], Tree) else kids
            return ListExpr(self.args(listed), span)
        if name == "optional_entry":
            # `?x` in a list or map literal: rewritten before anything else reads the tree
            # (policy/cel/optional_syntax.py).
            return Call(OPTIONAL_ENTRY, (self.expr(kids[0]),), None, span)
        if name == "map_lit":
            items = self.args(kids[0].children) if kids else ()
            entries = tuple((items[i], items[i + 1]) for i in range(0, len(items), 2))
            return MapExpr(entries, span)
        if name == "literal":
            return self.literal(kids[0])
        raise CelSyntaxError(f"unsupported syntax {name!r}", span[0])

    def chain(self, tree: Tree[Token]) -> Expr:
        """``a || b || c ...`` as a balanced tree, as cel-go builds it: Lark's is left-deep
        (a 400-term allow-list would nest 400 deep), and both operators are commutative."""
        name = tree.data
        terms: list[Tree[Token]] = []
        node = tree
        while node.data == name and len(node.children) == 2:
            terms.append(_tree(node.children[1]))
            node = _unnest(_tree(node.children[0]))
        terms.append(node)
        built = [self.expr(term) for term in reversed(terms)]
        return _balanced("_||_" if name == "conditionalor" else "_&&_", built)

    def unary(self, tree: Tree[Token]) -> Expr:
        """A run of ``!`` or ``-`` read as cel-go reads it: an even run is its operand, an
        odd run one operator (so ``!`` x 5,000 is not 5,000 levels deep)."""
        kind = _tree(tree.children[0]).data
        count = 0
        node = tree
        while node.data == "unary" and len(node.children) == 2 and (
            _tree(node.children[0]).data == kind
        ):
            count += 1
            node = _unnest(_tree(node.children[1]))
        operand = self.expr(node)
        if count % 2 == 0:
            return operand
        return Operator("!_" if kind == "unary_not" else "-_", (operand,), self.span(tree))

    def args(self, kids: list[Any]) -> tuple[Expr, ...]:
        if len(kids) == 1 and isinstance(kids[0], Tree) and kids[0].data == "exprlist":
            kids = kids[0].children
        built = []
        for kid in kids:  # a loop, not a generator: one Python frame less per level
            built.append(self.expr(kid))
        return tuple(built)

    def method(self, target: Expr, function: str, args: tuple[Expr, ...], span: Span) -> Expr:
        # all/exists/exists_one/filter take (variable, predicate); map may add a filter.
        arity_fits = len(args) == 2 or (len(args) == 3 and function == "map")
        if function in MACROS and arity_fits and isinstance(args[0], Ident):
            return Comprehension(function, target, args[0].name, args[1:], span)
        qualified = isinstance(target, Ident) and f"{target.name}.{function}" in QUALIFIED
        if isinstance(target, Ident) and (target.name in NAMESPACES or qualified):
            return Call(f"{target.name}.{function}", args, None, span)
        return Call(function, args, target, span)

    def literal(self, token: Token) -> Literal:
        span = self.span(token)
        text = str(token)
        kind = token.type
        if kind == "BOOL_LIT":
            return Literal(text == "true", "bool", span, text)
        if kind == "NULL_LIT":
            return Literal(None, "null", span, text)
        if kind == "UINT_LIT":
            return Literal(int(text[:-1], 0), "uint", span, text)
        if kind == "INT_LIT":
            return Literal(int(text, 0), "int", span, text)
        if kind == "FLOAT_LIT":
            return Literal(float(text), "double", span, text)
        try:
            if kind in ("STRING_LIT", "MLSTRING_LIT"):
                return Literal(_unescape(text, is_bytes=False), "string", span, text)
            return Literal(_unescape(text[1:], is_bytes=True), "bytes", span, text)
        except ValueError as error:  # as cel-go's parser, which the API server runs, refuses
            raise CelSyntaxError(f"{error} at column {span[0] + 1}", span[0]) from None


# Lark rules that only pass their one child on (a precedence level with no operator).
_PASS_THROUGH = frozenset(
    {
        "expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication",
        "unary", "member", "primary", "paren_expr",
    }
)


def _unnest(tree: Tree[Token]) -> Tree[Token]:
    """The first node below ``tree`` that is more than a precedence level (cel-go's
    ``unnest``): a loop, so a parenthesis costs no Python frames of its own."""
    while tree.data in _PASS_THROUGH and len(tree.children) == 1:
        child = tree.children[0]
        if not isinstance(child, Tree):
            break
        tree = child
    return tree


def _tree(node: Tree[Token] | Token) -> Tree[Token]:
    if not isinstance(node, Tree):
        raise CelSyntaxError(f"unexpected token {str(node)[:20]!r}", node.start_pos)
    return node


def _balanced(op: str, terms: list[Expr]) -> Expr:
    """``terms`` joined by ``op`` as a balanced binary tree; recursion depth log2(len)."""
    if len(terms) == 1:
        return terms[0]
    middle = (len(terms) + 1) // 2
    left, right = _balanced(op, terms[:middle]), _balanced(op, terms[middle:])
    return Operator(op, (left, right), (left.span[0], right.span[1]))


def depth(node: Expr) -> int:
    """How many levels ``node``'s tree has (a leaf is 1); iterative, for any tree."""
    deepest = 0
    stack = [(node, 1)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children(current))
    return deepest


# The one-character escapes of CEL string and bytes literals (cel-go's parser/unescape.go).
_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92,
                   "'": 39, '"': 34, "`": 96, "?": 63}
_HEX_WIDTH = {"x": 2, "X": 2, "u": 4, "U": 8}
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def _unescape(text: str, *, is_bytes: bool) -> str | bytes:
    """The value of a CEL string or bytes literal, ``text`` as written from its optional
    ``r`` prefix to its closing quote, decoded as cel-go's parser decodes it.

    In a bytes literal ``\\xHH`` and the octal ``\\OOO`` are one byte each and ``\\u`` is
    refused; in a string they are code points, written as UTF-8. Raises ValueError, with
    what is wrong, for an escape CEL does not have (``\\d``, ``\\0``, ``\\u`` in bytes).
    """
    raw = text[:1] in "rR"
    quoted = text[1:] if raw else text
    width = 3 if quoted[:3] in ("'''", '"""') else 1
    body = quoted[width:-width].replace("\r\n", "\n").replace("\r", "\n")
    if raw or "\\" not in body:
        return body.encode("utf-8", "surrogatepass") if is_bytes else body
    out = bytearray()
    i = 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out += char.encode("utf-8", "surrogatepass")
            i += 1
            continue
        escape = body[i + 1: i + 2]
        i += 2
        if escape in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[escape])
        elif escape in _HEX_WIDTH:
            if is_bytes and escape in "uU":
                raise ValueError(f"invalid escape \\{escape} in a bytes literal")
            digits = body[i: i + _HEX_WIDTH[escape]]
            if len(digits) != _HEX_WIDTH[escape] or not _HEX_DIGITS.issuperset(digits):
                raise ValueError(f"invalid escape \\{escape}{digits} in a literal")
            i += len(digits)
            out += _encoded(int(digits, 16), as_byte=is_bytes and escape in "xX")
        elif escape in ("0", "1", "2", "3"):
            digits = escape + body[i: i + 2]
            if len(digits) != 3 or not set(digits) <= set("01234567"):
                raise ValueError(f"invalid octal escape \\{digits} in a literal (three digits)")
            i += 2
            out += _encoded(int(digits, 8), as_byte=is_bytes)
        else:
            raise ValueError(f"invalid escape \\{escape} in a literal")
    return bytes(out) if is_bytes else out.decode("utf-8", "surrogatepass")


def _encoded(code: int, *, as_byte: bool) -> bytes:
    """An escape's value: the byte itself in a bytes literal, else the code point's UTF-8."""
    if as_byte:
        return bytes((code,))
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise ValueError(f"invalid code point U+{code:X} in a string literal")
    return chr(code).encode("utf-8")
