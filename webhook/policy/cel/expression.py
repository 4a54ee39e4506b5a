"""CEL expressions, compiled once at load with the variables Kubernetes admission offers.

Evaluation takes a prepared :class:`cel.Context`: converting Python objects into CEL values
is the costly step, so a request builds its context once and every program reuses it.
Each expression is parsed once into our syntax tree (:mod:`webhook.policy.cel.syntax`);
what it references and every rewrite of it come from that tree.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cel
from cel.stdlib import STDLIB_FUNCTIONS

from webhook.policy.cel.bounds import CelLimitError, check_expression_bounds
from webhook.policy.cel.functions import FUNCTIONS as OUR_FUNCTIONS
from webhook.policy.cel.library import FUNCTIONS as KUBERNETES_FUNCTIONS
from webhook.policy.cel.library import LibraryError
from webhook.policy.cel.optional_syntax import lower
from webhook.policy.cel.references import POLICY_VARIABLES, references
from webhook.policy.cel.syntax import CelSyntaxError, Expr, Span, parse, replace_spans

# The names an admission expression may use, as in ValidatingAdmissionPolicy.
ADMISSION_VARIABLES = frozenset(
    {"object", "oldObject", "request", "namespaceObject", "variables", "params", "authorizer"}
)
SUPPORTED_VARIABLES = frozenset({"object", "oldObject", "request", "namespaceObject", "variables"})
# Type names are values in CEL (`type(x) == string`); the Rust binding resolves these.
TYPE_NAMES = frozenset(
    {"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type"}
)


# The functions the Rust binding lacks and we bind as Python callbacks (cel.stdlib: strings,
# lists, math, sets, base64...), by the name CEL calls them (`math.greatest` included).
# ``contains`` stays the native string function. See docs/policies.md "CEL functions".
_EXTENSIONS: dict[str, Callable[..., Any]] = {
    **{k: v for k, v in STDLIB_FUNCTIONS.items() if k != "contains"},
    **OUR_FUNCTIONS,  # hashed sets.*, sets.of, tls.uncoveredHosts (policy/cel/functions.py)
    # Kubernetes' libraries (lists, regex, url, ip, cidr, quantity, format, optional syntax);
    # their min/max/sum/indexOf/lastIndexOf replace cel.stdlib's with Kubernetes' meaning.
    **KUBERNETES_FUNCTIONS,
}


class CelCompileError(ValueError):
    """An expression does not compile; the message says where in the expression."""


class CelEvaluationError(RuntimeError):
    """An expression failed at run time (missing field, wrong type, division by zero...)."""


@dataclass(frozen=True, slots=True)
class CelExpression:
    """A compiled expression.

    ``variables`` are the admission variables it reads; ``policy_variables`` the names of
    the policy's ``variables`` it reads, each bound in CEL as ``binding_prefix + name``.
    """

    source: str
    program: cel.Program
    variables: frozenset[str]
    policy_variables: tuple[str, ...] = ()
    binding_prefix: str = ""
    program_source: str = ""  # what was compiled: ``source`` after rewriting
    functions: tuple[str, ...] = ()  # extension functions (strings, lists...) it calls
    display: tuple[tuple[str, str], ...] = ()  # internal binding name -> what the user wrote
    # The syntax tree of ``source``, and where in it each ``variables.NAME`` is.
    syntax: Expr | None = field(default=None, compare=False, repr=False)
    variable_spans: tuple[tuple[str, Span], ...] = field(default=(), compare=False, repr=False)
    # What ``syntax``'s spans index: ``source``, or its rewrite when it uses the optional
    # syntax or ``cidr.ip()`` (webhook/policy/cel/optional_syntax.py).
    analysed_source: str = field(default="", compare=False, repr=False)

    def evaluate(self, context: cel.Context | dict[str, Any]) -> Any:
        try:
            return self.program.execute(context)
        except Exception as error:  # the binding raises assorted builtin types
            message = _describe_failure(error, self.source)
            for name, text in self.display:
                if f"'{name}'" in message:
                    # An unbound flat name is a field CEL could not select: say so plainly.
                    message = f"no such key: {text}"
            # ``from None``: the binding's own error may quote the object's values, and a
            # logged traceback would show it.
            raise CelEvaluationError(message) from None

    def evaluate_bool(self, context: cel.Context | dict[str, Any]) -> bool:
        result = self.evaluate(context)
        if not isinstance(result, bool):
            raise CelEvaluationError(f"expected a bool, got {cel_type_name(result)}")
        return result


def compile_expression(
    source: str,
    *,
    allowed: frozenset[str] = SUPPORTED_VARIABLES,
    binding_prefix: str = "",
    known_policy_variables: frozenset[str] | None = None,
) -> CelExpression:
    """Compile ``source``, checking it refers only to variables admission provides.

    ``variables.NAME`` is rewritten to a top-level binding (``binding_prefix + NAME``) so each
    policy variable is computed and converted to CEL once per request, only when read,
    instead of re-converting a growing ``variables`` map.
    """
    if not isinstance(source, str) or not source.strip():
        raise CelCompileError("expression is empty")
    try:
        # Before any parser: both recurse, and the Rust one cannot be stopped once it does.
        check_expression_bounds(source)
    except CelLimitError as error:
        raise CelCompileError(str(error)) from None
    tree = _parse(source)
    analysed = lower(source, tree)
    if analysed != source:
        tree = _parse(analysed)
    refs = references(tree)
    if POLICY_VARIABLES in refs.free and POLICY_VARIABLES not in allowed:
        raise CelCompileError(f"{POLICY_VARIABLES} is not available here")
    if refs.bare_variables:
        raise CelCompileError("use variables.<name> to read a variable")
    if known_policy_variables is not None:
        undefined = [name for name in refs.policy_variables if name not in known_policy_variables]
        if undefined:
            close = difflib.get_close_matches(undefined[0], known_policy_variables, n=1)
            raise CelCompileError(
                f"variables.{undefined[0]} is not defined "
                + (f"(did you mean variables.{close[0]}?) " if close else "")
                + "(a variable may use only variables declared before it)"
            )
    names = refs.free - {POLICY_VARIABLES} - TYPE_NAMES
    unknown = sorted(name for name in names - allowed if name not in ADMISSION_VARIABLES)
    if unknown:
        raise CelCompileError(
            f"undeclared reference to {', '.join(repr(n) for n in unknown)} "
            f"(available: {', '.join(sorted(allowed))})"
        )
    unsupported = sorted(names & (ADMISSION_VARIABLES - allowed))
    if unsupported:
        raise CelCompileError(f"{', '.join(unsupported)} is not available here")
    program_source = replace_spans(
        analysed, [(span, binding_prefix + name) for name, span in refs.variable_spans]
    )
    try:
        program = cel.compile(program_source)
    except Exception as error:
        raise CelCompileError(_first_line(str(error))) from error
    return CelExpression(
        source=source,
        program=program,
        variables=frozenset(names & allowed),
        policy_variables=refs.policy_variables,
        binding_prefix=binding_prefix,
        program_source=program_source,
        functions=tuple(f for f in refs.functions if f in EXTENSION_FUNCTIONS),
        syntax=tree,
        variable_spans=refs.variable_spans,
        analysed_source=analysed,
    )


def _parse(source: str) -> Expr:
    try:
        return parse(source)
    except CelSyntaxError as error:
        syntax_error = error
    # The Rust compiler's wording is what users see for every other compile error.
    try:
        cel.compile(source)
    except Exception as compile_error:
        raise CelCompileError(_first_line(str(compile_error))) from None
    raise CelCompileError(str(syntax_error))


def _first_line(text: str) -> str:
    """The parser's headline and position, without its multi-line source excerpt."""
    text = text.replace("Failed to parse expression", "does not parse").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return " ".join(lines[:2])


# What of the binding's error messages is told: only these shapes, whose parts are types,
# operators and names from the expression. Everything else it says may quote a value of
# the object (a missing map key, a regex or duration that does not parse, a callback's
# error), and values never reach a log or a response (admission objects hold secrets).
_UNSUPPORTED = re.compile(r"Unsupported operation: (\w+) (\S{1,3}) (\w+)\.")
_UNDEFINED = re.compile(r"Undefined variable or function: '([\w.]+)'")
_FUNCTION = re.compile(r"Function '([\w.]+)' error")
_CALLBACK = re.compile(r"CelFunctionError: ([\w.]+\(\)) failed on \(([\w, ]*)\): (\w+)")
_LIBRARY = re.compile(r"CelFunctionError: ([\w.]+\(\)): (.*?)(?:\. Check function arguments|$)")


def _describe_failure(error: Exception, source: str) -> str:
    """The failure as a type-and-name message: never a value read from the input."""
    text = str(error)
    if isinstance(error, KeyError):
        key = error.args[0] if error.args else None
        if isinstance(key, str) and _written_in(key, source):
            return f"no such key: {key!r}"  # a key the policy spells out, not a value
        return "no such key (the key is computed from the input)"
    if isinstance(error, ZeroDivisionError):
        return "division or modulo by zero"
    if isinstance(error, OverflowError) or "overflow" in text.lower():
        return "integer overflow"
    if match := _UNSUPPORTED.search(text):
        return f"no such operation: {match[1]} {match[2]} {match[3]}"
    if "No such overload" in text:
        return "no such overload: an operand or argument has a type the operation does not take"
    if match := _UNDEFINED.search(text):
        return f"no such variable or function: '{match[1]}'"
    if match := _LIBRARY.search(text):
        return f"{match[1]}: {match[2]}"
    if match := _CALLBACK.search(text):
        return f"{match[1]} failed on ({match[2]}): {match[3]}"
    if match := _FUNCTION.search(text):
        return f"{match[1]}() failed: an argument is not valid for it"
    return f"evaluation failed ({type(error).__name__})"


def _written_in(key: str, source: str) -> bool:
    return any(f"{quote}{key}{quote}" in source for quote in ("'", '"')) or (
        key.isidentifier() and f".{key}" in source
    )


def cel_type_name(value: Any) -> str:
    """A value's CEL type, for messages that must not show the value itself."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "map"
    return type(value).__name__


def _value_free(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` raising an error that names the function and its argument types only:
    the binding logs a callback's error (logger ``cel``) and puts it in its own."""

    @functools.wraps(function)
    def call(*args: Any) -> Any:
        try:
            return function(*args)
        except LibraryError as error:  # Kubernetes' words, the value left out by design
            raise CelFunctionError(f"{name}(): {error}") from None
        except Exception as error:
            types = ", ".join(cel_type_name(arg) for arg in args)
            raise CelFunctionError(f"{name}() failed on ({types}): {type(error).__name__}") \
                from None

    return call


class CelFunctionError(ValueError):
    """An extension function failed; the message holds types, never the arguments."""


# Every extension function, wrapped so its failures carry no values (see _value_free).
EXTENSION_FUNCTIONS = {name: _value_free(name, f) for name, f in _EXTENSIONS.items()}
