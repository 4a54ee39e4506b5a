"""CEL expressions, compiled once at load with the variables Kubernetes admission offers.

Evaluation takes a prepared :class:`cel.Context`: converting Python objects into CEL values
is the costly step, so a request builds its context once and every program reuses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import cel
from cel.stdlib import STDLIB_FUNCTIONS

# The names an admission expression may use, as in ValidatingAdmissionPolicy.
ADMISSION_VARIABLES = frozenset(
    {"object", "oldObject", "request", "namespaceObject", "variables", "params", "authorizer"}
)
SUPPORTED_VARIABLES = frozenset({"object", "oldObject", "request", "namespaceObject", "variables"})


# cel-go's extension libraries that Kubernetes enables (strings, lists, sets, math,
# base64), as Python callbacks. ``contains`` stays the native string function.
EXTENSION_FUNCTIONS = {k: v for k, v in STDLIB_FUNCTIONS.items() if k != "contains"}


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
    program_source, used = source, tuple[str, ...]()
    if "variables" in allowed:
        program_source, used = rewrite_variables(source, binding_prefix)
        if known_policy_variables is not None:
            undefined = [name for name in used if name not in known_policy_variables]
            if undefined:
                raise CelCompileError(
                    f"variables.{undefined[0]} is not defined "
                    "(a variable may use only variables declared before it)"
                )
    try:
        program = cel.compile(program_source)
    except Exception as error:
        raise CelCompileError(_first_line(str(error))) from error
    referenced = {
        name for name in program.variables() if not name.startswith(binding_prefix or "\0")
    }
    # Comprehension variables (x in `all(x, ...)`) show up as identifiers too; only a
    # top-level name that is neither a binding nor an admission variable is an error.
    bound = _comprehension_bindings(source)
    if "variables" in referenced - bound:
        raise CelCompileError("use variables.<name> to read a variable")
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
    return CelExpression(
        source=source,
        program=program,
        variables=frozenset(referenced & allowed) - {"variables"},
        policy_variables=used,
        binding_prefix=binding_prefix,
        program_source=program_source,
        functions=tuple(f for f in program.functions() if f in EXTENSION_FUNCTIONS),
    )


_VARIABLE_REFERENCE = re.compile(r"(?<![\w.])variables\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")


def rewrite_identifier(source: str, identifier: str, replacement: str) -> str:
    """Replace a top-level identifier outside string literals (not a field named the same)."""
    pattern = re.compile(r"(?<![\w.?])" + re.escape(identifier) + r"\b")
    return "".join(
        text if is_literal else pattern.sub(replacement, text)
        for is_literal, text in _split_literals(source)
    )


def rewrite_variables(source: str, prefix: str) -> tuple[str, tuple[str, ...]]:
    """Replace ``variables.NAME`` outside string literals by ``prefix + NAME``."""
    pieces: list[str] = []
    used: list[str] = []

    def rewrite(code: str) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group(1) not in used:
                used.append(match.group(1))
            return prefix + match.group(1)

        return _VARIABLE_REFERENCE.sub(replace, code)

    for is_literal, text in _split_literals(source):
        pieces.append(text if is_literal else rewrite(text))
    return "".join(pieces), tuple(used)


def _split_literals(source: str) -> list[tuple[bool, str]]:
    """Split CEL source into code and string-literal runs (quotes, triple quotes, escapes)."""
    parts: list[tuple[bool, str]] = []
    i = start = 0
    while i < len(source):
        char = source[i]
        if char in "'\"":
            quote = source[i : i + 3] if source[i : i + 3] in ("'''", '"""') else char
            if i > start:
                parts.append((False, source[start:i]))
            end = i + len(quote)
            while end < len(source) and not source.startswith(quote, end):
                end += 2 if source[end] == "\\" else 1
            end = min(end + len(quote), len(source))
            parts.append((True, source[i:end]))
            i = start = end
            continue
        i += 1
    if start < len(source):
        parts.append((False, source[start:]))
    return parts


def _comprehension_bindings(source: str) -> set[str]:
    return set(
        re.findall(
            r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,", source
        )
    )


def _first_line(text: str) -> str:
    """The parser's headline and position, without its multi-line source excerpt."""
    text = text.replace("Failed to parse expression", "does not parse").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return " ".join(lines[:2])


def _describe_failure(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"no such key: {error.args[0]!r}"
    return str(error) or type(error).__name__
