"""A CEL syntax tree compiled into the source of one Python function, built once at load.

The closures of compiler.py cost a Python call per node; here a whole expression is one
function whose nodes are a few bytecodes each: reads are subscripts guarded by a type test,
comprehension variables are locals, and ``&&``, ``||``, ``?:`` and the macros are written
out as statements. The semantics are compiler.py's, node for node (the same operators,
functions and errors, CEL's commutative logic, the first error standing), and what the
function calls for anything but the plainest case is what the closures call. An expression
the generator cannot write (nested deeper than Python's blocks allow, a node it does not
know) returns None and the caller keeps the closures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from webhook.policy.cel.runtime import operators
from webhook.policy.cel.runtime.builtins import BUILTINS
from webhook.policy.cel.runtime.steps import check_map_key, iterable, non_bool, not_a_condition
from webhook.policy.cel.runtime.values import TYPES, CelError, MissingKey, Unbound
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
)

Function = Callable[[dict[str, Any]], Any]


class _Unsupported(Exception):
    """The generator cannot write this expression: the closures serve it."""


def generate(tree: Expr, source: str, literal: Callable[[Literal], Any],
             functions: Mapping[str, Callable[..., Any]]) -> Function | None:
    """``tree`` as one Python function of the activation, or None when it cannot be one."""
    writer = _Writer(literal, functions)
    try:
        result = writer.value(tree, 1)
        writer.line(f"return {result}", 1)
        # Nothing a policy wrote is ever Python text here: names and fields are written with
        # repr(), literals and functions are constants the function reads by name.
        text = "def program(env):\n" + "\n".join(writer.lines) + "\n"
        namespace = dict(writer.constants)
        exec(compile(text, _filename(source), "exec"), namespace)
    except (_Unsupported, SyntaxError, RecursionError, MemoryError):
        return None
    program: Function = namespace["program"]
    return program


def _filename(source: str) -> str:
    """What tracebacks and profilers show: the expression's start, in plain characters."""
    shown = "".join(c if c.isalnum() or c in "_. =!<>&|()'" else " " for c in source[:48])
    return f"<cel {' '.join(shown.split())}>"


def _read(env: dict[str, Any], name: str) -> Any:
    """A name the activation does not hold yet: bound now (the engine's activation binds on
    first read), a type's name, or unbound."""
    try:
        return env[name]
    except KeyError:
        fallback = TYPES.get(name)
        if fallback is not None:
            return fallback
        raise Unbound(name) from None


def _select(value: Any, name: str) -> Any:
    if type(value) is dict:
        raise MissingKey(name)
    return operators.select(value, name)


_HELPERS: dict[str, Any] = {
    "CelError": CelError,
    "_read": _read,
    "_select": _select,
    "_non_bool": non_bool,
    "_not_a_condition": not_a_condition,
    "_iterable": iterable,
    "_map_key": check_map_key,
    "_equal": operators.equal,
    "_contains": operators.contains,
    "_index": operators.index,
    "_has": operators.has,
    "_compare": operators.compare,
    "_logical_not": operators.logical_not,
    "_negate": operators.negate,
}
_ORDERINGS = {"_<_": "(-1,)", "_<=_": "(-1, 0)", "_>_": "(1,)", "_>=_": "(1, 0)"}


class _Writer:
    """Writes statements computing each node into a local; ``value`` returns the local's
    name (or a constant's)."""

    def __init__(self, literal: Callable[[Literal], Any],
                 functions: Mapping[str, Callable[..., Any]]) -> None:
        self.literal = literal
        self.functions = functions
        self.lines: list[str] = []
        self.constants: dict[str, Any] = dict(_HELPERS)
        self._count = 0
        self._scope: dict[str, str] = {}  # comprehension variable -> its local
        # Locals that hold a bool whenever their statement completes (an operator's result:
        # comparisons, has(), `!`, `&&`, `||`, the quantifiers): the checks that a value is
        # a bool are not written for them.
        self._bools: set[str] = set()

    def line(self, text: str, depth: int) -> None:
        self.lines.append("    " * depth + text)

    def local(self) -> str:
        self._count += 1
        return f"t{self._count}"

    def constant(self, value: Any) -> str:
        self._count += 1
        name = f"k{self._count}"
        self.constants[name] = value
        return name

    def is_string_constant(self, name: str) -> bool:
        return name.startswith("k") and type(self.constants.get(name)) is str

    def is_null_constant(self, name: str) -> bool:
        return name.startswith("k") and name in self.constants and self.constants[name] is None

    def value(self, node: Expr, depth: int) -> str:
        if isinstance(node, Literal):
            return self.constant(self.literal(node))
        if isinstance(node, Ident):
            return self.ident(node.name, depth)
        if isinstance(node, Select):
            operand = self.value(node.operand, depth)
            name = repr(node.field)
            out = self.local()
            self.line(f"{out} = {operand}[{name}] if type({operand}) is dict and {name} in "
                      f"{operand} else _select({operand}, {name})", depth)
            return out
        if isinstance(node, Has):
            operand = self.value(node.target.operand, depth)
            name = repr(node.target.field)
            return self.boolean(f"({name} in {operand}) if type({operand}) is dict else "
                                f"_has({operand}, {name})", depth)
        if isinstance(node, Index):
            operand = self.value(node.operand, depth)
            key = self.value(node.index, depth)
            return self.assign(f"_index({operand}, {key})", depth)
        if isinstance(node, Operator):
            return self.operator(node, depth)
        if isinstance(node, Call):
            return self.call(node, depth)
        if isinstance(node, Comprehension):
            return self.comprehension(node, depth)
        if isinstance(node, ListExpr):
            return self.list_literal(node, depth)
        if isinstance(node, MapExpr):
            return self.map_literal(node, depth)
        if isinstance(node, StructExpr):
            error = self.constant(CelError(f"no such type: {node.type_name}"))
            self.line(f"raise {error}", depth)
            return "None"
        raise _Unsupported(type(node).__name__)

    def assign(self, expression: str, depth: int) -> str:
        out = self.local()
        self.line(f"{out} = {expression}", depth)
        return out

    def boolean(self, expression: str, depth: int) -> str:
        """``assign``, for an expression that gives a bool whenever it does not raise."""
        out = self.assign(expression, depth)
        self._bools.add(out)
        return out

    def ident(self, name: str, depth: int) -> str:
        local = self._scope.get(name)
        if local is not None:
            return local
        key = repr(name)
        return self.assign(f"env[{key}] if {key} in env else _read(env, {key})", depth)

    def operator(self, node: Operator, depth: int) -> str:
        op = node.op
        if op in ("_&&_", "_||_"):
            return self.logic(node.args[0], node.args[1], op == "_||_", depth)
        if op == "_?_:_":
            return self.conditional(node, depth)
        if op == "!_":
            operand = self.value(node.args[0], depth)
            return self.boolean(f"({operand} is False) if type({operand}) is bool else "
                                f"_logical_not({operand})", depth)
        if op == "-_":
            return self.assign(f"_negate({self.value(node.args[0], depth)})", depth)
        left = self.value(node.args[0], depth)
        right = self.value(node.args[1], depth)
        if op in ("_==_", "_!=_"):
            # CEL's equality with null is true of null alone, whatever the other side is
            # (operators.equal says the same, slower): the policies' `x != null` tests.
            for side, other in ((left, right), (right, left)):
                if self.is_null_constant(side):
                    return self.boolean(f"{other} is {'' if op == '_==_' else 'not '}None",
                                        depth)
            both_strings = " and ".join(f"type({side}) is str" for side in (left, right)
                                        if not self.is_string_constant(side))
            same = f"({left} == {right}) if {both_strings} else _equal({left}, {right})" \
                if both_strings else f"{left} == {right}"
            return self.boolean(same if op == "_==_" else f"not ({same})", depth)
        if op == "@in":
            # A string in a map is a dict lookup (operators.contains says the same, slower).
            key_is_string = "" if self.is_string_constant(left) else f" and type({left}) is str"
            return self.boolean(f"({left} in {right}) if type({right}) is dict{key_is_string} "
                                f"else _contains({left}, {right})", depth)
        if op in _ORDERINGS:
            symbol = op.strip("_")
            # Two ints or two strings order as Python orders them (operators.compare says
            # the same, slower; a bool is not an int here, as type() tells).
            same = (f"(type({left}) is int and type({right}) is int or type({left}) is str "
                    f"and type({right}) is str)")
            return self.boolean(f"({left} {symbol} {right}) if {same} else "
                                f"_compare({symbol!r}, {left}, {right}) in {_ORDERINGS[op]}",
                                depth)
        function = operators.ARITHMETIC.get(op)
        if function is None:
            raise _Unsupported(op)
        call = f"{self.constant(function)}({left}, {right})"
        if function is operators.add:
            # Two strings concatenate as in Python (operators.add says the same, slower):
            # the messages policies build.
            strings = " and ".join(f"type({side}) is str" for side in (left, right)
                                   if not self.is_string_constant(side))
            if strings:
                return self.assign(f"({left} + {right}) if {strings} else {call}", depth)
            return self.assign(f"{left} + {right}", depth)
        return self.assign(call, depth)

    def logic(self, left_node: Expr, right_node: Expr, decisive: bool, depth: int) -> str:
        """``&&`` (decisive false) and ``||`` (decisive true), as compiler._logic."""
        out, failure, error, left = self.local(), self.local(), self.local(), self.local()
        self.line(f"{failure} = None", depth)
        self.line("try:", depth)
        value = self.value(left_node, depth + 1)
        self.line(f"{left} = {value}", depth + 1)
        self.line("except CelError as " + error + ":", depth)
        self.line(f"{failure} = {error}", depth + 1)
        self.line(f"{left} = None", depth + 1)
        self.line(f"if {left} is {decisive}:", depth)
        self.line(f"{out} = {decisive}", depth + 1)
        self.line("else:", depth)
        inner = depth + 1
        if value not in self._bools:  # a known bool that did not fail is one
            self.line(f"if {failure} is None and type({left}) is not bool:", inner)
            self.line(f"{failure} = _non_bool({left})", inner + 1)
        self.line("try:", inner)
        right = self.value(right_node, inner + 1)
        self.line("except CelError as " + error + ":", inner)
        self.line(f"raise ({failure} or {error}) from None", inner + 1)
        self.line(f"if {right} is {decisive}:", inner)
        self.line(f"{out} = {decisive}", inner + 1)
        self.line(f"elif {failure} is not None:", inner)
        self.line(f"raise {failure}", inner + 1)
        if right not in self._bools:
            self.line(f"elif type({right}) is not bool:", inner)
            self.line(f"raise _non_bool({right})", inner + 1)
        self.line("else:", inner)
        self.line(f"{out} = {not decisive}", inner + 1)
        self._bools.add(out)
        return out

    def conditional(self, node: Operator, depth: int) -> str:
        test_node, yes_node, no_node = node.args
        out = self.local()
        test = self.value(test_node, depth)
        self.line(f"if {test} is True:", depth)
        self.line(f"{out} = {self.value(yes_node, depth + 1)}", depth + 1)
        self.line(f"elif {test} is False:", depth)
        self.line(f"{out} = {self.value(no_node, depth + 1)}", depth + 1)
        self.line("else:", depth)
        self.line(f"raise _not_a_condition({test})", depth + 1)
        return out

    def call(self, node: Call, depth: int) -> str:
        function = BUILTINS.get(node.function) or self.functions.get(node.function)
        if function is None:  # fails before its arguments are evaluated, as the closure
            error = self.constant(Unbound(node.function))
            self.line(f"raise {error}", depth)
            return "None"
        parts = (node.args if node.target is None else (node.target, *node.args))
        arguments = [self.value(part, depth) for part in parts]
        unwrapped = getattr(function, "__cel_unwrapped__", None)
        if unwrapped is not None:
            # An extension function whose wrapper names it in any failure: the function
            # itself is called, its failure made the wrapper's error here (one frame less).
            raw, failure = unwrapped
            out, error = self.local(), self.local()
            listed = ", ".join(arguments) + ("," if len(arguments) == 1 else "")
            self.line("try:", depth)
            self.line(f"{out} = {self.constant(raw)}({', '.join(arguments)})", depth + 1)
            self.line(f"except Exception as {error}:", depth)
            self.line(f"raise {self.constant(failure)}({error}, ({listed})) from None",
                      depth + 1)
            return out
        if function is BUILTINS["size"] and len(arguments) == 1:
            # The size of a list, map or string is its length (builtins.size, slower).
            (value,) = arguments
            return self.assign(f"len({value}) if type({value}) is list or type({value}) is dict "
                               f"or type({value}) is str else {self.constant(function)}({value})",
                               depth)
        return self.assign(f"{self.constant(function)}({', '.join(arguments)})", depth)

    def list_literal(self, node: ListExpr, depth: int) -> str:
        if all(isinstance(item, Literal) for item in node.items):
            values = self.constant([self.literal(item) for item in node.items])  # type: ignore[arg-type]
            return self.assign(f"list({values})", depth)
        items = [self.value(item, depth) for item in node.items]
        return self.assign(f"[{', '.join(items)}]", depth)

    def map_literal(self, node: MapExpr, depth: int) -> str:
        out = self.assign("{}", depth)
        for key_node, value_node in node.entries:
            key = self.value(key_node, depth)
            self.line(f"_map_key({out}, {key})", depth)
            value = self.value(value_node, depth)
            self.line(f"{out}[{key}] = {value}", depth)
        return out

    def comprehension(self, node: Comprehension, depth: int) -> str:
        macro = node.macro
        if macro not in ("all", "exists", "exists_one", "map", "filter"):
            raise _Unsupported(macro)
        over = self.value(node.range, depth)
        items = self.assign(f"{over} if type({over}) is list else _iterable({over}, {macro!r})",
                            depth)
        variable = self.local()
        shadowed = self._scope.get(node.variable)
        self._scope[node.variable] = variable
        try:
            if macro in ("all", "exists"):
                return self.quantifier(node, items, variable, macro == "exists", depth)
            if macro == "exists_one":
                return self.exists_one(node, items, variable, depth)
            return self.collect(node, items, variable, depth)
        finally:
            if shadowed is None:
                del self._scope[node.variable]
            else:
                self._scope[node.variable] = shadowed

    def quantifier(self, node: Comprehension, items: str, variable: str, decisive: bool,
                   depth: int) -> str:
        """``all`` and ``exists``, as compiler._quantifier."""
        out, failure, error = self.local(), self.local(), self.local()
        self.line(f"{failure} = None", depth)
        self.line(f"{out} = {not decisive}", depth)
        self.line(f"for {variable} in {items}:", depth)
        self.line("try:", depth + 1)
        predicate = self.value(node.body[0], depth + 2)
        self.line(f"except CelError as {error}:", depth + 1)
        self.line(f"if {failure} is None:", depth + 2)
        self.line(f"{failure} = {error}", depth + 3)
        self.line("continue", depth + 2)
        self.line(f"if {predicate} is {decisive}:", depth + 1)
        self.line(f"{out} = {decisive}", depth + 2)
        self.line("break", depth + 2)
        if predicate not in self._bools:
            self.line(f"if {failure} is None and type({predicate}) is not bool:", depth + 1)
            self.line(f"{failure} = _non_bool({predicate})", depth + 2)
        self.line("else:", depth)
        self.line(f"if {failure} is not None:", depth + 1)
        self.line(f"raise {failure}", depth + 2)
        self._bools.add(out)
        return out

    def exists_one(self, node: Comprehension, items: str, variable: str, depth: int) -> str:
        count = self.assign("0", depth)
        self.line(f"for {variable} in {items}:", depth)
        predicate = self.value(node.body[0], depth + 1)
        self.line(f"if {predicate} is True:", depth + 1)
        self.line(f"{count} += 1", depth + 2)
        self.line(f"elif {predicate} is not False:", depth + 1)
        self.line(f"raise _non_bool({predicate})", depth + 2)
        return self.boolean(f"{count} == 1", depth)

    def collect(self, node: Comprehension, items: str, variable: str, depth: int) -> str:
        """``map`` (with or without its filter) and ``filter``: appended, so O(n)."""
        out = self.assign("[]", depth)
        self.line(f"for {variable} in {items}:", depth)
        inner = depth + 1
        if node.macro == "map" and len(node.body) == 1:
            self.line(f"{out}.append({self.value(node.body[0], inner)})", inner)
            return out
        chosen = self.value(node.body[0], inner)
        self.line(f"if {chosen} is True:", inner)
        if node.macro == "map":
            self.line(f"{out}.append({self.value(node.body[1], inner + 1)})", inner + 1)
        else:
            self.line(f"{out}.append({variable})", inner + 1)
        self.line(f"elif {chosen} is not False:", inner)
        self.line(f"raise _non_bool({chosen})", inner + 1)
        return out
