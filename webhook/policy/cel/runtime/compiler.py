"""A CEL syntax tree (webhook/policy/cel/syntax.py) compiled into nested Python closures.

Each node becomes a function of the activation (a dict of name -> Python value), built once
at load: evaluation reads admission objects as they are, with no conversion into another
runtime's values. Comprehensions bind their variable in the activation for the loop and
restore it after; every macro appends to one Python list, so it costs O(n).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from webhook.policy.cel.runtime.builtins import BUILTINS
from webhook.policy.cel.runtime.codegen import generate
from webhook.policy.cel.runtime.operators import (
    ARITHMETIC,
    compare,
    contains,
    equal,
    has,
    index,
    logical_not,
    negate,
    select,
)
from webhook.policy.cel.runtime.steps import check_map_key, iterable, non_bool, not_a_condition
from webhook.policy.cel.runtime.values import (
    TYPES,
    CelError,
    MissingKey,
    UInt,
    Unbound,
)
from webhook.policy.cel.syntax import (
    Call,
    Comprehension,
    Expr,
    Has,
    Ident,
    Index,
    ListExpr,
    Literal,
    MapExpr,
    Operator,
    Select,
    StructExpr,
    children,
)

Activation = dict[str, Any]
Closure = Callable[[Activation], Any]
_MISSING = object()


class SharedActivation(dict[str, Any]):
    """An activation that keeps each program's outcome: policies often hold the very same
    expression over the same bindings (``has(object.metadata.labels)`` in fifty policies),
    and a program is a pure function of its activation, so it runs once per activation."""

    __slots__ = ("outcomes",)

    def __init__(self) -> None:
        # No dict.__init__: made empty already, and one call less per request.
        # program -> (failed, value); keyed by the program itself (it hashes by identity)
        self.outcomes: dict[Program, tuple[bool, Any]] = {}


class Program:
    """A compiled expression: ``execute`` evaluates it over an activation."""

    __slots__ = ("closure", "source")

    def __init__(self, closure: Closure, source: str) -> None:
        self.closure = closure
        self.source = source

    def execute(self, activation: Activation) -> Any:
        if not isinstance(activation, SharedActivation):
            return self.closure(activation)
        outcome = activation.outcomes.get(self)
        if outcome is None:
            try:
                value = self.closure(activation)
            except Exception as error:
                activation.outcomes[self] = (True, error)
                raise
            activation.outcomes[self] = (False, value)
            return value
        if outcome[0]:
            raise outcome[1]
        return outcome[1]


def compile_program(tree: Expr, source: str, functions: Mapping[str, Callable[..., Any]],
                    *, generated: bool = True) -> Program:
    """``tree`` as one generated Python function (codegen.py), or as closures when it
    cannot be one or ``generated`` is False (the closures are the reference the
    generated code is tested against)."""
    if generated:
        function = generate(tree, source, _literal_value, functions)
        if function is not None:
            return Program(function, source)
    return Program(_Compiler(functions).compile(tree), source)


class _Compiler:
    def __init__(self, functions: Mapping[str, Callable[..., Any]]) -> None:
        self.functions = functions

    def compile(self, node: Expr) -> Closure:
        """``node``'s closure; the children first, in this one frame (compiling an
        expression at the nesting limit must stay within a frame or two per level)."""
        if isinstance(node, Literal):
            return _constant(_literal_value(node))
        if isinstance(node, Ident):
            return _identifier(node.name)
        parts: list[Closure] = []
        for child in (node.target.operand,) if isinstance(node, Has) else children(node):
            parts.append(self.compile(child))
        if isinstance(node, Select):
            return _select(parts[0], node.field)
        if isinstance(node, Has):
            return _has(parts[0], node.target.field)
        if isinstance(node, Index):
            operand, key = parts
            return lambda env: index(operand(env), key(env))
        if isinstance(node, Operator):
            return _operator(node.op, parts)
        if isinstance(node, Call):
            return self.call(node.function, parts)
        if isinstance(node, Comprehension):
            return _MACROS[node.macro](parts[0], node.variable, parts[1:], node.macro)
        if isinstance(node, ListExpr):
            return _list_literal(node, parts)
        if isinstance(node, MapExpr):
            return _map_literal(parts)
        if isinstance(node, StructExpr):
            return _failing(CelError(f"no such type: {node.type_name}"))
        raise CelError(f"unsupported expression: {type(node).__name__}")

    def call(self, name: str, every: list[Closure]) -> Closure:
        function = BUILTINS.get(name) or self.functions.get(name)
        if function is None:
            return _failing(Unbound(name))
        if len(every) == 0:
            return lambda env: function()
        if len(every) == 1:
            (only,) = every
            return lambda env: function(only(env))
        if len(every) == 2:
            first, second = every
            return lambda env: function(first(env), second(env))
        return lambda env: function(*[arg(env) for arg in every])


def _select(operand: Closure, name: str) -> Closure:
    def selected(env: Activation) -> Any:
        value = operand(env)
        if type(value) is dict:
            try:
                return value[name]
            except KeyError:
                raise MissingKey(name) from None
        return select(value, name)

    return selected


def _has(operand: Closure, name: str) -> Closure:
    def present(env: Activation) -> bool:
        value = operand(env)
        if type(value) is dict:
            return name in value
        return has(value, name)

    return present


def _operator(op: str, args: list[Closure]) -> Closure:
    if op == "_&&_":
        return _logic(args[0], args[1], decisive=False)
    if op == "_||_":
        return _logic(args[0], args[1], decisive=True)
    if op == "_?_:_":
        return _conditional(*args)
    if op == "!_":
        (operand,) = args
        return lambda env: logical_not(operand(env))
    if op == "-_":
        (operand,) = args
        return lambda env: negate(operand(env))
    left, right = args
    if op == "_==_":
        return lambda env: equal(left(env), right(env))
    if op == "_!=_":
        return lambda env: not equal(left(env), right(env))
    if op == "@in":
        return lambda env: contains(left(env), right(env))
    if op in _ORDERINGS:
        holds = _ORDERINGS[op]
        symbol = op.strip("_")
        return lambda env: compare(symbol, left(env), right(env)) in holds
    function = ARITHMETIC.get(op)
    if function is None:
        raise CelError(f"unsupported operator {op}")
    return lambda env: function(left(env), right(env))


def _list_literal(node: ListExpr, items: list[Closure]) -> Closure:
    if all(isinstance(item, Literal) for item in node.items):
        values = [_literal_value(item) for item in node.items]  # type: ignore[arg-type]
        return lambda env: list(values)
    return lambda env: [item(env) for item in items]


def _map_literal(parts: list[Closure]) -> Closure:
    entries = list(zip(parts[0::2], parts[1::2], strict=True))

    def build(env: Activation) -> dict[Any, Any]:
        built: dict[Any, Any] = {}
        for key_of, value_of in entries:
            key = key_of(env)
            check_map_key(built, key)
            built[key] = value_of(env)
        return built

    return build


_ORDERINGS: dict[str, frozenset[int]] = {
    "_<_": frozenset({-1}),
    "_<=_": frozenset({-1, 0}),
    "_>_": frozenset({1}),
    "_>=_": frozenset({1, 0}),
}


def _constant(value: Any) -> Closure:
    return lambda env: value


def _failing(error: CelError) -> Closure:
    def fail(env: Activation) -> Any:
        raise error

    return fail


def _identifier(name: str) -> Closure:
    fallback = TYPES.get(name)
    if name == "null_type":
        fallback = TYPES["null_type"]

    def read(env: Activation) -> Any:
        try:
            return env[name]
        except KeyError:
            if fallback is not None:
                return fallback
            raise Unbound(name) from None

    return read


def _literal_value(node: Literal) -> Any:
    if node.kind == "uint":
        return UInt(node.value)
    if node.kind == "bytes":
        return bytes_literal(node.text)
    return node.value


def _logic(left: Closure, right: Closure, *, decisive: bool) -> Closure:
    """``&&`` (decisive false) and ``||`` (decisive true), commutative as in CEL: a decisive
    side wins over an error or a non-bool on the other; else the first failure stands."""

    def logic(env: Activation) -> bool:
        try:
            value = left(env)
        except CelError as error:
            failure: CelError | None = error
        else:
            if value is decisive:
                return bool(decisive)
            failure = None if type(value) is bool else non_bool(value)
        try:
            other = right(env)
        except CelError as error:
            raise (failure or error) from None
        if other is decisive:
            return bool(decisive)
        if failure is not None:
            raise failure
        if type(other) is not bool:
            raise non_bool(other)
        return not decisive

    return logic


def _conditional(test: Closure, yes: Closure, no: Closure) -> Closure:
    def conditional(env: Activation) -> Any:
        value = test(env)
        if value is True:
            return yes(env)
        if value is False:
            return no(env)
        raise not_a_condition(value)

    return conditional


_Macro = Callable[[Closure, str, list[Closure], str], Closure]


def _bound(run: Callable[[Activation, Any], Any], over: Closure, variable: str,
           macro: str) -> Closure:
    """``run`` over the range's elements with ``variable`` bound, restored afterwards."""

    def loop(env: Activation) -> Any:
        items = iterable(over(env), macro)
        saved = env.get(variable, _MISSING)
        try:
            return run(env, items)
        finally:
            if saved is _MISSING:
                env.pop(variable, None)
            else:
                env[variable] = saved

    return loop


def _quantifier(over: Closure, variable: str, body: list[Closure], macro: str) -> Closure:
    """``all`` and ``exists``: a decisive element wins over errors on others (CEL's
    commutative logic); with none, the first error stands."""
    (predicate,) = body
    decisive = macro == "exists"

    def run(env: Activation, items: Any) -> bool:
        failure: CelError | None = None
        for item in items:
            env[variable] = item
            try:
                value = predicate(env)
            except CelError as error:
                failure = failure or error
                continue
            if value is decisive:
                return bool(decisive)
            if type(value) is not bool:
                failure = failure or non_bool(value)
        if failure is not None:
            raise failure
        return not decisive

    return _bound(run, over, variable, macro)


def _exists_one(over: Closure, variable: str, body: list[Closure], macro: str) -> Closure:
    (predicate,) = body

    def run(env: Activation, items: Any) -> bool:
        count = 0
        for item in items:
            env[variable] = item
            value = predicate(env)
            if value is True:
                count += 1
            elif value is not False:
                raise non_bool(value)
        return count == 1

    return _bound(run, over, variable, macro)


def _map(over: Closure, variable: str, body: list[Closure], macro: str) -> Closure:
    if len(body) == 1:
        (transform,) = body

        def run(env: Activation, items: Any) -> list[Any]:
            out = []
            for item in items:
                env[variable] = item
                out.append(transform(env))
            return out

        return _bound(run, over, variable, macro)
    keep, transform = body

    def run_filtered(env: Activation, items: Any) -> list[Any]:
        out = []
        for item in items:
            env[variable] = item
            chosen = keep(env)
            if chosen is True:
                out.append(transform(env))
            elif chosen is not False:
                raise non_bool(chosen)
        return out

    return _bound(run_filtered, over, variable, macro)


def _filter(over: Closure, variable: str, body: list[Closure], macro: str) -> Closure:
    (keep,) = body

    def run(env: Activation, items: Any) -> list[Any]:
        out = []
        for item in items:
            env[variable] = item
            chosen = keep(env)
            if chosen is True:
                out.append(item)
            elif chosen is not False:
                raise non_bool(chosen)
        return out

    return _bound(run, over, variable, macro)


_MACROS: dict[str, _Macro] = {
    "all": _quantifier,
    "exists": _quantifier,
    "exists_one": _exists_one,
    "map": _map,
    "filter": _filter,
}


_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92,
                   "'": 39, '"': 34, "`": 96, "?": 63}


def bytes_literal(text: str) -> bytes:
    """A CEL bytes literal's value: ``\\xHH`` and octal escapes are single bytes, other
    characters their UTF-8 encoding (``b'ÿ'`` is two bytes, ``b'\\377'`` one)."""
    body = text[1:] if text[:1] in "bB" else text
    raw = body[:1] in "rR"
    if raw:
        body = body[1:]
    quote = 3 if body[:3] in ("'''", '"""') else 1
    body = body[quote:-quote]
    if raw:
        return body.encode("utf-8")
    out = bytearray()
    position = 0
    while position < len(body):
        char = body[position]
        if char != "\\":
            out += char.encode("utf-8")
            position += 1
            continue
        escape = body[position + 1]
        if escape in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[escape])
            position += 2
        elif escape in "xX":
            out.append(int(body[position + 2:position + 4], 16))
            position += 4
        elif escape == "u":
            out += chr(int(body[position + 2:position + 6], 16)).encode("utf-8")
            position += 6
        elif escape == "U":
            out += chr(int(body[position + 2:position + 10], 16)).encode("utf-8")
            position += 10
        elif escape in "0123":
            out.append(int(body[position + 1:position + 4], 8))
            position += 4
        else:
            raise CelError("invalid escape in a bytes literal")
    return bytes(out)
