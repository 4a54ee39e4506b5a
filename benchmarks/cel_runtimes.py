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

Runtimes: ``rust`` (``common-expression-language``, what the engine used before, with our
extension functions bound as it bound them; a test dependency), ``py`` (the engine's runtime,
webhook/policy/cel/runtime), ``cpp`` (``cel-expr-python``, Google's cel-cpp; an optional
install: skipped, saying so, when missing). Figures only, noisy on a shared
machine: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

try:  # the Rust binding: a test dependency only, since the engine evaluates with closures
    import cel
except ImportError:  # pragma: no cover - the test extra installs it
    cel = None  # type: ignore[assignment]

from webhook.cluster.memory import MemoryCluster  # noqa: E402
from webhook.policy.cel.expression import EXTENSION_FUNCTIONS  # noqa: E402
from webhook.policy.cel.optional_syntax import lower  # noqa: E402
from webhook.policy.cel.runtime import CelError, compile_program  # noqa: E402
from webhook.policy.cel.syntax import Call, CelSyntaxError, parse, walk  # noqa: E402
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

    name = "rust (common-expression-language, before)"

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



# -- the engine's runtime: the policies' CEL compiled into Python closures ---------------------


class ClosureRuntime(Runtime):
    """webhook/policy/cel/runtime, as the engine compiles it: our parser's tree compiled
    once into closures that read the admission objects as they are."""

    name = "py (closures, the engine's)"

    def compile(self, source: str, names: tuple[str, ...] = ADMISSION,
                check: bool = True) -> Any:
        try:
            return compile_program(parse(lower(source, parse(source))), source,
                                   EXTENSION_FUNCTIONS)
        except (CelError, CelSyntaxError) as error:
            raise ValueError(str(error)) from None

    def bind(self, activation: Mapping[str, Any]) -> Any:
        return dict(activation)

    def run(self, program: Any, bound: Any) -> Any:
        try:
            return program.execute(bound)
        except Exception as error:  # CEL's error value or a library's
            return Failed(type(error).__name__)


def runtimes() -> tuple[list[Runtime], list[str]]:
    """The runtimes installed here, and why each missing one is skipped."""
    found: list[Runtime] = [ClosureRuntime()]
    skipped: list[str] = []
    if cel is None:
        skipped.append("rust (common-expression-language): not installed (the test extra)")
    else:
        found.insert(0, RustRuntime())
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
