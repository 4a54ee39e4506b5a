"""Which CEL runtime should evaluate policies: the measurement behind that choice (issue 21).

Run: .venv/bin/python benchmarks/cel_runtimes.py [--repeat 200] [--sizes 100,400,1600,6400]
     [--cel-spec DIR]   (DIR: cel-spec's tests/simple/testdata, for the conformance pass rates)

Each runtime available here is measured the same way:

1. every CEL expression of the shipped policies (policies/*.yaml, loaded as the server loads
   them) on every suite case's objects: median µs per expression (converting the object
   included) and per request (converting once, then every expression of the suite's policies);
2. ``map``, ``filter`` and list concatenation over n elements, to tell linear from quadratic;
3. agreement with the current runtime (the Rust binding ``cel``) on every (case, expression):
   the same value, or an error on both sides;
4. the features we need that it lacks (probed with one expression each);
5. cel-spec conformance pass rates for basic, comparisons, lists, macros and string.

Runtimes: ``rust`` (``common-expression-language``, what the engine uses today, with our
extension functions bound as it binds them), ``cpp`` (``cel-expr-python``, Google's cel-cpp;
an optional install: skipped, saying so, when missing). Figures only, noisy on a shared
machine: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import functools
import math
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cel  # noqa: E402

from webhook.cluster.memory import MemoryCluster  # noqa: E402
from webhook.policy.cel.expression import EXTENSION_FUNCTIONS  # noqa: E402
from webhook.policy.cel.syntax import Call, parse, walk  # noqa: E402
from webhook.policy.load.loader import load_policies  # noqa: E402
from webhook.policy.model.namespaces import namespace_object  # noqa: E402
from webhook.policy.model.nulls import without_nulls  # noqa: E402
from webhook.suites.model import discover_suites, load_suite  # noqa: E402
from webhook.suites.runner import case_request  # noqa: E402

ADMISSION = ("object", "oldObject", "request", "namespaceObject", "variables")
CONFORMANCE_FILES = ("basic", "comparisons", "lists", "macros", "string")


class Failed:
    """An evaluation error, whatever the runtime's way of telling it."""

    def __init__(self, why: str) -> None:
        self.why = why

    def __repr__(self) -> str:
        return f"Failed({self.why!r})"


Evaluate = Callable[[Mapping[str, Any]], Any]  # one expression, converting its activation


class Runtime:
    """One CEL runtime: compile an expression, bind a request, evaluate."""

    name = ""

    def compile(self, source: str, names: tuple[str, ...] = ADMISSION,
                check: bool = True) -> Any:
        """A program for ``source``, or raise: a compile error of this runtime. ``check``
        False skips a type checker (cel-spec's ``disable_check``)."""
        raise NotImplementedError

    def bind(self, activation: Mapping[str, Any]) -> Any:
        """The activation converted once, for every expression of a request."""
        raise NotImplementedError

    def run(self, program: Any, bound: Any) -> Any:
        """The value, or a :class:`Failed`."""
        raise NotImplementedError

    def evaluate(self, program: Any, activation: Mapping[str, Any]) -> Any:
        return self.run(program, self.bind(activation))


class RustRuntime(Runtime):
    """``common-expression-language`` with our extension functions, as the engine binds them."""

    name = "rust (common-expression-language, today)"

    def compile(self, source: str, names: tuple[str, ...] = ADMISSION,
                check: bool = True) -> Any:
        functions = {
            n.function for n in walk(parse(source))
            if isinstance(n, Call) and n.function in EXTENSION_FUNCTIONS
        }
        self.used |= functions
        return cel.compile(source), tuple(sorted(functions))

    def __init__(self) -> None:
        self.used: set[str] = set()  # functions any compiled program calls

    def bind(self, activation: Mapping[str, Any]) -> Any:
        context = cel.Context()
        for name, value in activation.items():
            context.add_variable(name, value)
        for name in sorted(self.used):
            context.add_function(name, EXTENSION_FUNCTIONS[name])
        return context

    def run(self, program: Any, bound: Any) -> Any:
        try:
            return program[0].execute(bound)
        except Exception as error:  # the binding raises assorted builtin types
            return Failed(type(error).__name__)

    def evaluate(self, program: Any, activation: Mapping[str, Any]) -> Any:
        # One expression on its own: only the functions it calls are bound, as the engine does.
        context = cel.Context()
        for name, value in activation.items():
            context.add_variable(name, value)
        for name in program[1]:
            context.add_function(name, EXTENSION_FUNCTIONS[name])
        return self.run(program, context)


def _flatten(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if isinstance(item, list):
            out.extend(item)
        else:
            out.append(item)
    return out


class CppRuntime(Runtime):
    """``cel-expr-python`` (cel-cpp): variables declared ``dyn``, our functions declared with
    Python implementations, its strings/optional/math extensions."""

    name = "cpp (cel-expr-python)"

    def __init__(self) -> None:
        # An optional install, without type information.
        from cel_expr_python import cel as cpp  # type: ignore[import-untyped,import-not-found,unused-ignore]
        from cel_expr_python.ext import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
            ext_math,
            ext_optional,
            ext_strings,
        )

        from webhook.policy.cel.functions import (
            set_of,
            sets_contains,
            sets_equivalent,
            sets_intersects,
        )

        self.cpp = cpp
        dyn = cpp.Type.DYN
        dyn_list = cpp.Type.List(dyn)
        bool_ = cpp.Type.BOOL

        def two_lists(name: str, impl: Callable[..., Any]) -> Any:
            overload = cpp.Overload(
                name.replace(".", "_") + "_list_list", bool_, [dyn_list, dyn_list], impl=impl
            )
            return cpp.FunctionDecl(name, [overload])

        self.functions = [
            two_lists("sets.contains", sets_contains),
            two_lists("sets.equivalent", sets_equivalent),
            two_lists("sets.intersects", sets_intersects),
            cpp.FunctionDecl(
                "sets.of",
                [cpp.Overload("sets_of_list", cpp.Type.Map(dyn, bool_), [dyn_list], impl=set_of)],
            ),
            # cel-go's ext lists `flatten()`: cel-expr-python ships no lists extension.
            cpp.FunctionDecl(
                "flatten",
                [cpp.Overload("list_flatten", dyn_list, [dyn_list], is_member=True,
                              impl=_flatten)],
            ),
        ]
        self.extensions = [ext_strings.ExtStrings(), ext_optional.ExtOptional(),
                           ext_math.ExtMath()]
        self.envs: dict[tuple[str, ...], Any] = {}
        self.env(ADMISSION)

    def env(self, names: tuple[str, ...]) -> Any:
        if names not in self.envs:
            self.envs[names] = self.cpp.NewEnv(
                variables={n: self.cpp.Type.DYN for n in names},
                extensions=self.extensions, functions=self.functions,
            )
        return self.envs[names]

    def compile(self, source: str, names: tuple[str, ...] = ADMISSION,
                check: bool = True) -> Any:
        return self.env(names).compile(source, disable_check=not check)

    def bind(self, activation: Mapping[str, Any]) -> Any:
        return self.env(ADMISSION).Activation(dict(activation))

    def run(self, program: Any, bound: Any) -> Any:
        try:
            value = program.eval(bound)
        except Exception as error:  # a Python impl that raised
            return Failed(type(error).__name__)
        if value.type() == self.cpp.Type.ERROR:
            return Failed("error value")
        return value.plain_value()

    def evaluate(self, program: Any, activation: Mapping[str, Any]) -> Any:
        try:
            value = program.eval(data=dict(activation))
        except Exception as error:
            return Failed(type(error).__name__)
        if value.type() == self.cpp.Type.ERROR:
            return Failed("error value")
        return value.plain_value()



# -- a prototype: the policies' CEL subset compiled into Python closures -----------------------
# What the "compile to closures" candidate would cost and where its semantics stand: it reads
# the admission objects as they are (no conversion), and every comprehension appends to one
# Python list (linear). Prototype limits, reported by the feature probes and conformance:
# no uint type of its own, no optional syntax, no type checker, RE2 approximated by `re`.

INT_MIN, INT_MAX = -(2**63), 2**63 - 1


class CelError(Exception):
    """An evaluation error inside the closures (CEL's error value)."""


Closure = Callable[[dict[str, Any]], Any]


def _int(value: int) -> int:
    if not INT_MIN <= value <= INT_MAX:
        raise CelError("integer overflow")
    return value


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def cel_equal(a: Any, b: Any) -> bool:
    """CEL's heterogeneous equality: numbers by value across int and double, else by type."""
    if _is_num(a) and _is_num(b):
        return bool(a == b)
    if type(a) is not type(b) and not (isinstance(a, Mapping) and isinstance(b, Mapping)):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(cel_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping):
        return len(a) == len(b) and all(
            k in b and cel_equal(v, b[k]) for k, v in a.items())
    return bool(a == b)


def _compare(op: str, a: Any, b: Any) -> bool:
    if _is_num(a) and _is_num(b) and type(a) is not type(b):
        a, b = float(a), float(b)  # as cel-go: int against double compares as doubles
    ok = (_is_num(a) and _is_num(b)) or (
        type(a) is type(b) and isinstance(a, str | bytes | bool))
    if not ok:
        raise CelError(f"no such overload: {type(a).__name__} {op} {type(b).__name__}")
    if op == "_<_":
        return bool(a < b)
    if op == "_<=_":
        return bool(a <= b)
    if op == "_>_":
        return bool(a > b)
    return bool(a >= b)


def _arith(op: str, a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int:
        if op == "_+_":
            return _int(a + b)
        if op == "_-_":
            return _int(a - b)
        if op == "_*_":
            return _int(a * b)
        if b == 0:
            raise CelError("division or modulo by zero")
        quotient = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)  # truncates, as C
        return _int(quotient) if op == "_/_" else a - b * quotient
    if type(a) is float and type(b) is float and op != "_%_":
        try:
            return {"_+_": a + b, "_-_": a - b, "_*_": a * b}[op] if op != "_/_" else (
                a / b if b else math.copysign(math.inf, a) * math.copysign(1, b)
                if a else math.nan)
        except KeyError:
            pass
    if op == "_+_" and type(a) is type(b) and isinstance(a, str | bytes | list):
        return a + b
    raise CelError(f"no such overload: {type(a).__name__} {op} {type(b).__name__}")


def _size(value: Any) -> int:
    if isinstance(value, str | bytes | list | Mapping):
        return len(value)
    raise CelError("no such overload: size")


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != math.inf else str(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise CelError("invalid UTF-8") from None
    raise CelError("no such overload: string")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise CelError("no such overload: int")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value == value or not INT_MIN <= value < 2.0**63:
            raise CelError("integer overflow")
        return int(value)
    if isinstance(value, str):
        try:
            return _int(int(value, 10))
        except ValueError:
            raise CelError("invalid int") from None
    raise CelError("no such overload: int")


def _matches(text: Any, pattern: Any) -> bool:
    if not isinstance(text, str) or not isinstance(pattern, str):
        raise CelError("no such overload: matches")
    try:
        return re.search(pattern, text) is not None
    except re.error:
        raise CelError("invalid regex") from None


def _strings(name: str, check: Callable[[str, str], Any]) -> Callable[[Any, Any], Any]:
    def function(target: Any, arg: Any) -> Any:
        if not isinstance(target, str) or not isinstance(arg, str):
            raise CelError(f"no such overload: {name}")
        return check(target, arg)
    return function


BUILTINS: dict[str, Callable[..., Any]] = {
    "size": _size,
    "string": _string,
    "int": _to_int,
    "dyn": lambda value: value,
    "double": lambda value: float(value) if _is_num(value) else float(_string(value)),
    "matches": _matches,
    "startsWith": _strings("startsWith", str.startswith),
    "endsWith": _strings("endsWith", str.endswith),
    "contains": _strings("contains", lambda a, b: b in a),
}


def _in(item: Any, container: Any) -> bool:
    if isinstance(container, list):
        return any(cel_equal(item, x) for x in container)
    if isinstance(container, Mapping):
        if isinstance(item, float) and item.is_integer():
            item = int(item)
        return item in container if not isinstance(item, list | dict) else False
    raise CelError("no such overload: in")


def compile_closure(node: Any) -> Closure:
    """A closure evaluating ``node`` over an environment of Python values."""
    from webhook.policy.cel import syntax as s

    if isinstance(node, s.Literal):
        value = node.value
        return lambda env: value
    if isinstance(node, s.Ident):
        name = node.name

        def ident(env: dict[str, Any]) -> Any:
            try:
                return env[name]
            except KeyError:
                raise CelError(f"undeclared reference to {name!r}") from None
        return ident
    if isinstance(node, s.Select):
        operand, key = compile_closure(node.operand), node.field

        def select(env: dict[str, Any]) -> Any:
            value = operand(env)
            if not isinstance(value, Mapping):
                raise CelError(f"no such field: {key}")
            try:
                return value[key]
            except KeyError:
                raise CelError(f"no such key: {key}") from None
        return select
    if isinstance(node, s.Has):
        operand, key = compile_closure(node.target.operand), node.target.field

        def has(env: dict[str, Any]) -> bool:
            value = operand(env)
            if not isinstance(value, Mapping):
                raise CelError("has() on a value that is not a map")
            return key in value
        return has
    if isinstance(node, s.Index):
        operand, index = compile_closure(node.operand), compile_closure(node.index)

        def at(env: dict[str, Any]) -> Any:
            value, i = operand(env), index(env)
            if isinstance(value, list):
                if type(i) is float and i.is_integer():
                    i = int(i)
                if type(i) is not int:
                    raise CelError("no such overload: list index")
                if not 0 <= i < len(value):
                    raise CelError("index out of range")
                return value[i]
            if isinstance(value, Mapping):
                if type(i) is float and i.is_integer():
                    i = int(i)
                if isinstance(i, list | dict) or i not in value:
                    raise CelError("no such key")
                return value[i]
            raise CelError("no such overload: index")
        return at
    if isinstance(node, s.ListExpr):
        items = [compile_closure(i) for i in node.items]
        return lambda env: [item(env) for item in items]
    if isinstance(node, s.MapExpr):
        entries = [(compile_closure(k), compile_closure(v)) for k, v in node.entries]

        def build(env: dict[str, Any]) -> dict[Any, Any]:
            out: dict[Any, Any] = {}
            for k, v in entries:
                key = k(env)
                if not isinstance(key, str | int) or key in out:
                    raise CelError("invalid or repeated map key")
                out[key] = v(env)
            return out
        return build
    if isinstance(node, s.Operator):
        return _operator(node.op, [compile_closure(a) for a in node.args])
    if isinstance(node, s.Call):
        return _call(node.function, None if node.target is None else compile_closure(node.target),
                     [compile_closure(a) for a in node.args])
    if isinstance(node, s.Comprehension):
        return _comprehension(node.macro, compile_closure(node.range), node.variable,
                              [compile_closure(b) for b in node.body])
    raise CelError(f"unsupported expression: {type(node).__name__}")


def _logic(is_and: bool, left: Closure, right: Closure) -> Closure:
    # CEL's commutative && and ||: a decisive side wins over an error on the other.
    decisive = not is_and

    def logic(env: dict[str, Any]) -> bool:
        failure: Exception | None = None
        for side in (left, right):
            try:
                value = side(env)
            except CelError as error:
                failure = error
                continue
            if type(value) is not bool:
                failure = CelError("no such overload: logic on a non-bool")
            elif value is decisive:
                return decisive
        if failure is not None:
            raise failure
        return not decisive
    return logic


def _operator(op: str, args: list[Closure]) -> Closure:
    if op in ("_&&_", "_||_"):
        return _logic(op == "_&&_", args[0], args[1])
    if op == "_?_:_":
        test, yes, no = args

        def ternary(env: dict[str, Any]) -> Any:
            value = test(env)
            if type(value) is not bool:
                raise CelError("no such overload: ternary on a non-bool")
            return yes(env) if value else no(env)
        return ternary
    if op == "!_":
        (operand,) = args

        def negate(env: dict[str, Any]) -> bool:
            value = operand(env)
            if type(value) is not bool:
                raise CelError("no such overload: !")
            return not value
        return negate
    if op == "-_":
        (operand,) = args

        def minus(env: dict[str, Any]) -> Any:
            value = operand(env)
            if type(value) is int:
                return _int(-value)
            if type(value) is float:
                return -value
            raise CelError("no such overload: -")
        return minus
    left, right = args
    if op == "_==_":
        return lambda env: cel_equal(left(env), right(env))
    if op == "_!=_":
        return lambda env: not cel_equal(left(env), right(env))
    if op == "@in":
        return lambda env: _in(left(env), right(env))
    if op in ("_<_", "_<=_", "_>_", "_>=_"):
        return lambda env: _compare(op, left(env), right(env))
    return lambda env: _arith(op, left(env), right(env))


def _call(name: str, target: Closure | None, args: list[Closure]) -> Closure:
    from webhook.policy.cel.expression import EXTENSION_FUNCTIONS as extensions

    function = BUILTINS.get(name)
    if function is None:
        extension = extensions.get(name)
        if extension is None:
            # No checker: an unknown function is an error when called, and `|| true` absorbs it.
            def unknown(env: dict[str, Any]) -> Any:
                raise CelError(f"undeclared function {name!r}")
            return unknown

        def guarded(*values: Any) -> Any:
            try:
                return extension(*values)
            except CelError:
                raise
            except Exception as error:  # an extension's own failure is CEL's error
                raise CelError(f"{name}() failed: {type(error).__name__}") from None
        function = guarded
    every = args if target is None else [target, *args]
    if len(every) == 1:
        (only,) = every
        return lambda env: function(only(env))
    if len(every) == 2:
        first, second = every
        return lambda env: function(first(env), second(env))
    return lambda env: function(*(a(env) for a in every))


def _comprehension(macro: str, range_: Closure, variable: str, body: list[Closure]) -> Closure:
    def items(env: dict[str, Any]) -> Any:
        value = range_(env)
        if not isinstance(value, list | Mapping):
            raise CelError(f"no such overload: {macro} over a non-list")
        return value

    def loop(env: dict[str, Any]) -> Any:
        saved = env.get(variable, _MISSING)
        try:
            return run(env, items(env))
        finally:
            if saved is _MISSING:
                env.pop(variable, None)
            else:
                env[variable] = saved

    predicate = body[0]

    def test(env: dict[str, Any]) -> bool:
        value = predicate(env)
        if type(value) is not bool:
            raise CelError("no such overload: predicate is not a bool")
        return value

    def run(env: dict[str, Any], values: Any) -> Any:
        if macro in ("all", "exists"):
            decisive = macro == "exists"
            failure: Exception | None = None
            for item in values:
                env[variable] = item
                try:
                    if test(env) is decisive:
                        return decisive
                except CelError as error:
                    failure = error
            if failure is not None:
                raise failure
            return not decisive
        if macro == "exists_one":
            count = 0
            for item in values:
                env[variable] = item
                count += test(env)
            return count == 1
        out: list[Any] = []
        if macro == "filter":
            for item in values:
                env[variable] = item
                if test(env):
                    out.append(item)
            return out
        transform = body[-1]
        for item in values:  # map: (transform) or (filter, transform)
            env[variable] = item
            if len(body) == 1 or test(env):
                out.append(transform(env))
        return out

    return loop


_MISSING = object()


class ClosureRuntime(Runtime):
    """The prototype above: our parser's tree compiled once, the objects read as they are."""

    name = "py (closures, prototype)"

    def compile(self, source: str, names: tuple[str, ...] = ADMISSION,
                check: bool = True) -> Any:
        try:
            return compile_closure(parse(source))
        except CelError as error:
            raise ValueError(str(error)) from None

    def bind(self, activation: Mapping[str, Any]) -> Any:
        return dict(activation)

    def run(self, program: Any, bound: Any) -> Any:
        try:
            return program(bound)
        except CelError as error:
            return Failed(str(error))
        except RecursionError:
            return Failed("too deep")


def runtimes() -> tuple[list[Runtime], list[str]]:
    """The runtimes installed here, and why each missing one is skipped."""
    found: list[Runtime] = [RustRuntime(), ClosureRuntime()]
    skipped: list[str] = []
    try:
        found.append(CppRuntime())
    except ImportError:
        skipped.append("cpp (cel-expr-python): not installed (pip install cel-expr-python)")
    return found, skipped


# -- equality of results across runtimes ------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """The same CEL value (bool is not int), or both an error."""
    if isinstance(a, Failed) or isinstance(b, Failed):
        return isinstance(a, Failed) and isinstance(b, Failed)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return type(a) is type(b) and a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, bytes | bytearray) and isinstance(b, bytes | bytearray):
        return bytes(a) == bytes(b)
    return type(a) is type(b) and bool(a == b)


# -- the shipped policies on their suites -------------------------------------------------------


@dataclass
class PolicyCase:
    """One suite case, with what each policy of its suite evaluates on it."""

    activation: dict[str, Any]
    policies: list[tuple[list[tuple[str, str]], list[str]]]  # (variables, expressions)


def suite_cases(policies_dir: Path, limit: int | None = None) -> list[PolicyCase]:
    """Every case of every suite under ``policies_dir``, with its suite's expressions."""
    cases: list[PolicyCase] = []
    for file in discover_suites(policies_dir):
        for suite in load_suite(file):
            policy_set = load_policies(*suite.policy_paths)
            cluster = MemoryCluster.from_yaml(*suite.cluster_paths)
            shape: list[tuple[list[tuple[str, str]], list[str]]] = []
            for policy in policy_set.policies:
                names = [(n.name, n.expression.source) for n in policy.variables]
                variable_sources = {source for _, source in names}
                others = [e.source for e in policy.expressions()
                          if e.source not in variable_sources]
                shape.append((names, others))
            for case in suite.cases[:limit]:
                request = case_request(case)
                namespace = cluster.get_namespace(request.namespace) if request.namespace else None
                raw = {k: v for k, v in request.raw.items() if k not in ("object", "oldObject")}
                cases.append(PolicyCase(
                    activation={
                        "object": without_nulls(request.object),
                        "oldObject": without_nulls(request.old_object),
                        "request": without_nulls(raw),
                        "namespaceObject": without_nulls(
                            namespace_object(request.namespace, namespace)),
                    },
                    policies=shape,
                ))
    return cases


@dataclass
class SuiteFigures:
    expressions: int = 0
    evaluations: int = 0
    compile_errors: list[str] = field(default_factory=list)
    per_expression_us: float = 0.0
    per_request_us: float = 0.0
    disagreements: list[str] = field(default_factory=list)
    compared: int = 0  # (case, expression) results compared with the Rust binding's


def _with_variables(runtime: Runtime, programs: Mapping[str, Any], base: Mapping[str, Any],
                    variables: list[tuple[str, str]]) -> dict[str, Any]:
    """The activation with the policy's variables computed in order (failures left out)."""
    values: dict[str, Any] = {}
    activation = {**base, "variables": values}
    bound = runtime.bind(activation)
    for name, source in variables:
        program = programs.get(source)
        if program is None:
            continue
        value = runtime.run(program, bound)
        if not isinstance(value, Failed):
            values[name] = value
            bound = runtime.bind(activation)
    return activation


def measure_suites(found: list[Runtime], cases: list[PolicyCase],
                   repeat: int) -> dict[str, SuiteFigures]:
    sources = sorted({s for c in cases for vs, es in c.policies
                      for s in [*(v for _, v in vs), *es]})
    figures: dict[str, SuiteFigures] = {}
    programs: dict[str, dict[str, Any]] = {}
    for runtime in found:
        fig = figures[runtime.name] = SuiteFigures(expressions=len(sources))
        programs[runtime.name] = {}
        for source in sources:
            try:
                programs[runtime.name][source] = runtime.compile(source)
            except Exception as error:  # each runtime has its own compile error type
                fig.compile_errors.append(f"{source[:60]!r}: {str(error).splitlines()[0][:100]}")
    reference = found[0]
    # Agreement, and the activation each runtime's own variables give.
    for case in cases:
        for variables, expressions in case.policies:
            results: dict[str, dict[str, Any]] = {}
            for runtime in found:
                progs = programs[runtime.name]
                activation = _with_variables(runtime, progs, case.activation, variables)
                bound = runtime.bind(activation)
                results[runtime.name] = {
                    s: runtime.run(progs[s], bound) if s in progs else Failed("compile")
                    for s in [*(v for _, v in variables), *expressions]
                }
            for runtime in found[1:]:
                for source, expected in results[reference.name].items():
                    got = results[runtime.name][source]
                    figures[runtime.name].compared += 1
                    if not same(expected, got):
                        why = ("same elements in another order (filter over a map: CEL leaves "
                               "map order unspecified)" if _reordered(expected, got)
                               else f"rust {_show(expected)}, this {_show(got)}")
                        figures[runtime.name].disagreements.append(f"{source[:70]!r}: {why}")
    # Timing: per expression (convert + evaluate one), per request (convert once, all).
    for runtime in found:
        progs = programs[runtime.name]
        per_expression: list[float] = []
        per_request: list[float] = []
        fig = figures[runtime.name]
        for case in cases:
            activation = {**case.activation, "variables": {}}
            used = [s for vs, es in case.policies for s in [*(v for _, v in vs), *es]
                    if s in progs]
            every = [progs[s] for s in used]
            for source in used[:8]:  # a sample per case keeps the run short
                # As the engine does: only the variables the expression reads are converted.
                own = {k: v for k, v in activation.items() if k in roots(source)}
                program = progs[source]
                per_expression.append(_median_us(
                    functools.partial(runtime.evaluate, program, own), repeat))
            fig.evaluations += len(every)

            per_request.append(_median_us(
                functools.partial(_request, runtime, every, activation), max(1, repeat // 10)))
        fig.per_expression_us = statistics.median(per_expression) if per_expression else 0.0
        fig.per_request_us = statistics.median(per_request) if per_request else 0.0
    return figures


def _request(runtime: Runtime, programs: list[Any], activation: Mapping[str, Any]) -> None:
    """One request: the activation converted once, then every expression."""
    bound = runtime.bind(activation)
    for program in programs:
        runtime.run(program, bound)


def roots(source: str) -> frozenset[str]:
    """The admission variables ``source`` reads."""
    from webhook.policy.cel.syntax import Ident

    return frozenset(n.name for n in walk(parse(source))
                     if isinstance(n, Ident) and n.name in ADMISSION)


def _reordered(a: Any, b: Any) -> bool:
    if not isinstance(a, list) or not isinstance(b, list) or len(a) != len(b):
        return False
    rest = list(b)
    for item in a:
        match = next((i for i, x in enumerate(rest) if same(item, x)), None)
        if match is None:
            return False
        rest.pop(match)
    return True


def _show(value: Any) -> str:
    if isinstance(value, Failed):
        return "error"
    return type(value).__name__  # never a value: objects may hold secrets


def _median_us(function: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter_ns()
        function()
        samples.append((time.perf_counter_ns() - started) / 1000)
    return statistics.median(samples)


# -- scaling ------------------------------------------------------------------------------------

SCALING = {
    "map": "object.items.map(x, x.host)",
    "filter": "object.items.filter(x, x.port > 10)",
    "concat": "object.items + object.more",
}


def measure_scaling(found: list[Runtime], sizes: list[int]) -> dict[str, dict[str, list[float]]]:
    """Milliseconds per evaluation (conversion included) for each operation and size."""
    out: dict[str, dict[str, list[float]]] = {}
    for runtime in found:
        table = out[runtime.name] = {}
        for operation, source in SCALING.items():
            program = runtime.compile(source)
            row = []
            for n in sizes:
                items = [{"host": f"h{i}.example.com", "port": i} for i in range(n)]
                activation = {"object": {"items": items, "more": list(items)}}
                best = math.inf
                for _ in range(3):  # the best of 3: a first call pays one-time costs
                    started = time.perf_counter()
                    result = runtime.evaluate(program, activation)
                    best = min(best, (time.perf_counter() - started) * 1000)
                row.append(math.nan if isinstance(result, Failed) else best)
            table[operation] = row
    return out


def growth(sizes: list[int], millis: list[float]) -> str:
    """The exponent k of t ~ n^k between the two largest sizes: ~1 linear, ~2 quadratic."""
    if len(sizes) < 2 or millis[-2] <= 0 or math.isnan(millis[-1]):
        return "?"
    k = math.log(millis[-1] / millis[-2]) / math.log(sizes[-1] / sizes[-2])
    return f"n^{k:.1f}"


# -- features -----------------------------------------------------------------------------------

FEATURES: list[tuple[str, str, Callable[[Any], bool]]] = [
    # (what, expression, does the result show the feature)
    ("our functions: sets.of/sets.contains", "'a' in sets.of(['a']) && sets.contains(['a'], ['a'])",
     lambda r: r is True),
    ("optional syntax ?.", "{'a': 1}.?b.orValue(2) == 2", lambda r: r is True),
    ("heterogeneous equality 1 == 1.0", "dyn(1) == dyn(1.0)", lambda r: r is True),
    ("heterogeneous equality, literals 1 == 1.0", "1 == 1.0", lambda r: r is True),
    ("int overflow is an error", "9223372036854775807 + 1", lambda r: isinstance(r, Failed)),
    ("int == string rejected at compile", "1 == 'a'", lambda r: r == "compile error"),
]


def probe_features(found: list[Runtime]) -> dict[str, list[tuple[str, bool]]]:
    out: dict[str, list[tuple[str, bool]]] = {}
    for runtime in found:
        rows = out[runtime.name] = []
        for what, source, holds in FEATURES:
            try:
                program = runtime.compile(source)
            except Exception:
                result: Any = "compile error"
            else:
                result = runtime.evaluate(program, {})
            rows.append((what, bool(holds(result))))
    return out


# -- cel-spec conformance -----------------------------------------------------------------------


def _tokens(text: str) -> Iterator[str]:
    """Protobuf text format tokens: names, numbers, quoted strings, punctuation."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in "{}[]:,<>;":
            yield c
            i += 1
        elif c in "'\"":
            j = i + 1
            while text[j] != c:
                j += 2 if text[j] == "\\" else 1
            yield text[i:j + 1]
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "{}[]:,<>;#'\"":
                j += 1
            yield text[i:j]
            i = j


def _unquote(token: str) -> bytes:
    """A text-format string literal's bytes (C escapes: \\n, \\xHH, \\NNN octal, \\uXXXX)."""
    body, out, i = token[1:-1], bytearray(), 0
    simple = {"n": 10, "t": 9, "r": 13, "a": 7, "b": 8, "f": 12, "v": 11, "\\": 92, "'": 39,
              '"': 34, "?": 63}
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        e = body[i + 1]
        if e in simple:
            out.append(simple[e])
            i += 2
        elif e in "xX":
            j = i + 2
            while j < len(body) and j < i + 4 and body[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(int(body[i + 2:j], 16))
            i = j
        elif e in "uU":
            width = 4 if e == "u" else 8
            out += chr(int(body[i + 2:i + 2 + width], 16)).encode()
            i += 2 + width
        else:
            j = i + 1
            while j < len(body) and j < i + 4 and body[j] in "01234567":
                j += 1
            out.append(int(body[i + 1:j], 8))
            i = j
    return bytes(out)


def parse_textproto(text: str) -> dict[str, list[Any]]:
    """A message as {field: [values]}: scalars stay tokens, strings become bytes."""
    tokens = list(_tokens(text))
    position = 0

    def message(end: str | None) -> dict[str, list[Any]]:
        nonlocal position
        fields: dict[str, list[Any]] = {}
        while position < len(tokens) and tokens[position] != end:
            name = tokens[position]
            position += 1
            if tokens[position] == ":":
                position += 1
            fields.setdefault(name, []).extend(values())
            if position < len(tokens) and tokens[position] in ",;":
                position += 1
        position += 1
        return fields

    def values() -> list[Any]:
        nonlocal position
        if tokens[position] == "[":
            position += 1
            items = []
            while tokens[position] != "]":
                items.extend(values())
                if tokens[position] == ",":
                    position += 1
            position += 1
            return items
        return [value()]

    def value() -> Any:
        nonlocal position
        token = tokens[position]
        if token in "{<":
            position += 1
            return message("}" if token == "{" else ">")
        if token[0] in "'\"":
            data = b""
            while position < len(tokens) and tokens[position][0] in "'\"":
                data += _unquote(tokens[position])
                position += 1
            return data
        position += 1
        return token

    return message(None)


# Policies read JSON objects: no protobuf messages (wrappers included), timestamps or durations.
OUTSIDE_SUBSET = ("google.protobuf", "TestAllTypes", "timestamp(", "duration(")


class Unsupported(Exception):
    """A conformance value this harness does not model (messages, types, durations...)."""


def cel_value(value: dict[str, list[Any]]) -> Any:
    """A cel.expr.Value as a Python value."""
    (kind, (raw,)), = value.items()
    if kind in ("int64_value", "uint64_value"):
        return int(raw.rstrip("uU"), 0)
    if kind == "double_value":
        return float(raw)
    if kind == "string_value":
        return raw.decode("utf-8")
    if kind == "bytes_value":
        return raw
    if kind == "bool_value":
        return raw == "true"
    if kind == "null_value":
        return None
    if kind == "list_value":
        return [cel_value(v) for v in raw.get("values", [])]
    if kind == "map_value":
        return {cel_value(e["key"][0]): cel_value(e["value"][0]) for e in raw.get("entries", [])}
    raise Unsupported(kind)


@dataclass
class Conformance:
    passed: int = 0
    failed: int = 0
    skipped: int = 0  # cases needing what the harness does not model (messages, type values)
    failures: list[str] = field(default_factory=list)


def conformance(found: list[Runtime], directory: Path) -> dict[str, dict[str, Conformance]]:
    out: dict[str, dict[str, Conformance]] = {r.name: {} for r in found}
    for name in CONFORMANCE_FILES:
        path = directory / f"{name}.textproto"
        if not path.is_file():
            continue
        data = parse_textproto(path.read_text(encoding="utf-8"))
        tests = [(s["name"][0].decode(), t) for s in data.get("section", [])
                 for t in s.get("test", [])]
        for runtime in found:
            result = out[runtime.name][name] = Conformance()
            for section, test in tests:
                _conformance_case(runtime, f"{section}/{test['name'][0].decode()}", test, result)
    return out


def _conformance_case(runtime: Runtime, label: str, test: dict[str, list[Any]],
                      result: Conformance) -> None:
    source = test["expr"][0].decode("utf-8")
    try:
        if "container" in test or "type_env" in test:
            raise Unsupported("declarations")
        if any(word in source for word in OUTSIDE_SUBSET):
            raise Unsupported("messages, timestamps or durations")
        activation = {b["key"][0].decode(): cel_value(b["value"][0]["value"][0])
                      for b in test.get("bindings", [])}
        expect_error = "eval_error" in test
        expected = None if expect_error else cel_value(test["value"][0]) if "value" in test \
            else True
    except Unsupported:
        result.skipped += 1
        return
    try:
        check = test.get("disable_check", ["false"])[0] != "true"
        program = runtime.compile(source, tuple(sorted(activation)), check)
    except Exception:
        ok = expect_error  # a compile error: it passes where an error is expected
    else:
        got = runtime.evaluate(program, activation)
        ok = isinstance(got, Failed) if expect_error else same(expected, got)
    if ok:
        result.passed += 1
    else:
        result.failed += 1
        result.failures.append(label)


# -- report -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--sizes", default="100,400,1600,6400")
    parser.add_argument("--cases", type=int, default=None, help="at most this many per suite")
    parser.add_argument("--policies", type=Path, default=ROOT / "policies")
    parser.add_argument("--cel-spec", type=Path, default=None,
                        help="cel-spec's tests/simple/testdata folder (skipped when absent)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    found, skipped = runtimes()
    for reason in skipped:
        print(f"skipped {reason}")
    cases = suite_cases(args.policies, args.cases)
    print(f"\n## Shipped policies on their suites ({len(cases)} cases)")
    suites = measure_suites(found, cases, args.repeat)
    for name, fig in suites.items():
        print(f"{name}: {fig.expressions} expressions, {len(fig.compile_errors)} do not compile; "
              f"median {fig.per_expression_us:.1f} µs per expression (conversion included), "
              f"{fig.per_request_us:.1f} µs per request ({fig.evaluations} evaluations)")
        if name != found[0].name:
            print(f"  disagreements with rust: {len(fig.disagreements)} of {fig.compared} results")
            for line in sorted(set(fig.disagreements))[:10]:
                print(f"    {line}")
        for line in fig.compile_errors[:10]:
            print(f"  compile error {line}")
    print(f"\n## Scaling, ms per evaluation at n = {', '.join(map(str, sizes))}")
    for name, table in measure_scaling(found, sizes).items():
        for operation, row in table.items():
            print(f"{name} {operation}: {', '.join(f'{m:.2f}' for m in row)}"
                  f"  ({growth(sizes, row)})")
    print("\n## Features we need")
    for name, rows in probe_features(found).items():
        print(f"{name}: " + "; ".join(f"{what}: {'yes' if ok else 'NO'}" for what, ok in rows))
    if args.cel_spec is None or not args.cel_spec.is_dir():
        print("\n## cel-spec conformance: skipped (pass --cel-spec tests/simple/testdata)")
        return 0
    print("\n## cel-spec conformance (passed/failed/skipped)")
    for name, files in conformance(found, args.cel_spec).items():
        total = Conformance()
        parts = []
        for file, c in files.items():
            parts.append(f"{file} {c.passed}/{c.failed}/{c.skipped}")
            total.passed += c.passed
            total.failed += c.failed
            total.skipped += c.skipped
        rate = 100 * total.passed / max(1, total.passed + total.failed)
        print(f"{name}: {rate:.1f}% of {total.passed + total.failed} run: " + ", ".join(parts))
        failures = [f"{file}/{label}" for file, c in files.items() for label in c.failures]
        print("  failed: " + ", ".join(failures[:40]) + (" ..." if len(failures) > 40 else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
