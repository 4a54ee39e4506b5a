"""CEL expressions, compiled once at load with the variables Kubernetes admission offers.

Evaluation takes a prepared :class:`cel.Context`: converting Python objects into CEL values
is the costly step, so a request builds its context once and every program reuses it.
Each expression is parsed once into our syntax tree (:mod:`webhook.policy.cel_syntax`);
what it references and every rewrite of it come from that tree.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import cel
from cel.stdlib import STDLIB_FUNCTIONS

from webhook.policy.cel_references import POLICY_VARIABLES, references
from webhook.policy.cel_syntax import CelSyntaxError, Expr, Span, parse, replace_spans
from webhook.policy.functions import FUNCTIONS as OUR_FUNCTIONS

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
EXTENSION_FUNCTIONS = {
    **{k: v for k, v in STDLIB_FUNCTIONS.items() if k != "contains"},
    **OUR_FUNCTIONS,  # hashed sets.*, sets.of, tls.uncoveredHosts (webhook/policy/functions.py)
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

    def evaluate(self, context: cel.Context | dict[str, Any]) -> Any:
        try:
            return self.program.execute(context)
        except Exception as error:  # the binding raises assorted builtin types
            message = _describe_failure(error)
            for name, text in self.display:
                if name in message:
                    # An unbound flat name is a field CEL could not select: say so plainly.
                    message = (
                        f"no such key: {text}"
                        if "Undefined" in message
                        else message.replace(name, text)
                    )
            raise CelEvaluationError(message) from error

    def evaluate_bool(self, context: cel.Context | dict[str, Any]) -> bool:
        result = self.evaluate(context)
        if not isinstance(result, bool):
            raise CelEvaluationError(f"expected a bool, got {type(result).__name__} {result!r}")
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
    tree = _parse(source)
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
        source, [(span, binding_prefix + name) for name, span in refs.variable_spans]
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


def _describe_failure(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"no such key: {error.args[0]!r}"
    return str(error) or type(error).__name__
