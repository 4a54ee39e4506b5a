"""CEL expressions, compiled once at load with the variables Kubernetes admission offers.

Evaluation takes a prepared :class:`cel.Context`: converting Python objects into CEL values
is the costly step, so a request builds its context once and every program reuses it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cel

# The names an admission expression may use, as in ValidatingAdmissionPolicy.
ADMISSION_VARIABLES = frozenset(
    {"object", "oldObject", "request", "namespaceObject", "variables", "params", "authorizer"}
)
SUPPORTED_VARIABLES = frozenset({"object", "oldObject", "request", "namespaceObject", "variables"})


class CelCompileError(ValueError):
    """An expression does not compile; the message says where in the expression."""


class CelEvaluationError(RuntimeError):
    """An expression failed at run time (missing field, wrong type, division by zero...)."""


@dataclass(frozen=True, slots=True)
class CelExpression:
    source: str
    program: cel.Program
    variables: frozenset[str]

    def evaluate(self, context: cel.Context | Mapping[str, Any]) -> Any:
        try:
            return self.program.execute(context)
        except Exception as error:  # the binding raises assorted builtin types
            raise CelEvaluationError(_describe_failure(error)) from error

    def evaluate_bool(self, context: cel.Context | Mapping[str, Any]) -> bool:
        result = self.evaluate(context)
        if not isinstance(result, bool):
            raise CelEvaluationError(f"expected a bool, got {type(result).__name__} {result!r}")
        return result


def compile_expression(
    source: str, *, allowed: frozenset[str] = SUPPORTED_VARIABLES
) -> CelExpression:
    """Compile ``source``, checking it refers only to variables admission provides."""
    if not isinstance(source, str) or not source.strip():
        raise CelCompileError("expression is empty")
    try:
        program = cel.compile(source)
    except Exception as error:
        raise CelCompileError(_first_line(str(error))) from error
    referenced = set(program.variables())
    # Comprehension variables (x in `all(x, ...)`) show up as identifiers too; only a
    # top-level name that is neither a binding nor an admission variable is an error.
    bound = _comprehension_bindings(source)
    unknown = sorted(
        name for name in referenced - bound - allowed if name not in ADMISSION_VARIABLES
    )
    if unknown:
        raise CelCompileError(
            f"undeclared reference to {', '.join(repr(n) for n in unknown)} "
            f"(available: {', '.join(sorted(allowed))})"
        )
    unsupported = sorted((referenced - bound) & (ADMISSION_VARIABLES - allowed))
    if unsupported:
        raise CelCompileError(f"{', '.join(unsupported)} is not available here")
    return CelExpression(source=source, program=program, variables=frozenset(referenced & allowed))


def _comprehension_bindings(source: str) -> set[str]:
    return set(
        re.findall(
            r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,", source
        )
    )


def _first_line(text: str) -> str:
    text = text.replace("Failed to parse expression", "does not parse").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith("ERROR: <input>:"):
        return " ".join(lines[:2])
    return " ".join(lines[:1]) + ("" if len(lines) <= 1 else " " + " ".join(lines[1:2]))


def _describe_failure(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"no such key: {error.args[0]!r}"
    return str(error) or type(error).__name__


def make_context(variables: Mapping[str, Any]) -> cel.Context:
    return cel.Context(dict(variables))
