"""CEL expressions, compiled once at load with the variables Kubernetes admission offers.

Each expression is parsed once into our syntax tree (:mod:`webhook.policy.cel.syntax`);
what it references and every rewrite of it come from that tree, and the tree is compiled
into Python closures (:mod:`webhook.policy.cel.runtime`) that read the admission objects as
they are. Evaluation takes an activation: a dict of the names the expression reads.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from webhook.policy.cel.bounds import CelLimitError, check_expression_bounds
from webhook.policy.cel.errors import CelCompileError as CelCompileError
from webhook.policy.cel.errors import CelEvaluationError as CelEvaluationError
from webhook.policy.cel.errors import CelFunctionError
from webhook.policy.cel.functions import FUNCTIONS as OUR_FUNCTIONS
from webhook.policy.cel.library import FUNCTIONS as KUBERNETES_FUNCTIONS
from webhook.policy.cel.library import LibraryError
from webhook.policy.cel.optional_syntax import lower
from webhook.policy.cel.references import POLICY_VARIABLES, references
from webhook.policy.cel.runtime import (
    CelError,
    MissingKey,
    Program,
    SharedActivation,
    compile_program,
)
from webhook.policy.cel.runtime.extensions import FUNCTIONS as CEL_GO_EXTENSIONS
from webhook.policy.cel.runtime.values import type_name
from webhook.policy.cel.syntax import CelSyntaxError, Expr, Span, parse, replace_spans

# The names an admission expression may use, as in ValidatingAdmissionPolicy.
ADMISSION_VARIABLES = frozenset(
    {"object", "oldObject", "request", "namespaceObject", "variables", "params", "authorizer"}
)
SUPPORTED_VARIABLES = frozenset({"object", "oldObject", "request", "namespaceObject", "variables"})
# Type names are values in CEL (`type(x) == string`); the runtime resolves these.
TYPE_NAMES = frozenset(
    {"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type",
     "optional_type"}
)


# The extension functions, beside the runtime's standard ones (cel-go's strings, lists,
# math, base64...: runtime/extensions.py), by the name CEL calls them (`math.greatest`
# included). See docs/policies.md "CEL functions".
_EXTENSIONS: dict[str, Callable[..., Any]] = {
    **CEL_GO_EXTENSIONS,
    **OUR_FUNCTIONS,  # hashed sets.*, sets.of, tls.uncoveredHosts (policy/cel/functions.py)
    # Kubernetes' libraries (lists, regex, url, ip, cidr, quantity, format, optional syntax);
    # their min/max/sum/indexOf/lastIndexOf replace cel-go's with Kubernetes' meaning.
    **KUBERNETES_FUNCTIONS,
}


# What evaluation reads: each name the expression uses -> its Python value.
Activation: TypeAlias = dict[str, Any]


@dataclass(frozen=True, slots=True)
class CelExpression:
    """A compiled expression.

    ``variables`` are the admission variables it reads; ``policy_variables`` the names of
    the policy's ``variables`` it reads, each bound in CEL as ``binding_prefix + name``.
    """

    source: str
    program: Program
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

    def evaluate(self, context: Activation) -> Any:
        """The value over ``context``: a dict of names (or anything with a ``variables``
        dict, as the Rust binding's context had)."""
        if not isinstance(context, dict):
            context = dict(getattr(context, "variables", context))
        try:
            return self.program.execute(context)
        except Exception as error:  # CEL's error value, a library's, or a runtime fault
            raise self.failure(error) from None

    def failure(self, error: Exception) -> CelEvaluationError:
        """``error`` told without a value of the input (a library's own error may quote
        one, so it is never chained: a logged traceback would show it)."""
        message = _describe_failure(error, self.source)
        for name, text in self.display:
            if f"'{name}'" in message:
                # An unbound flat name is a field CEL could not select: say so plainly.
                message = f"no such key: {text}"
        return CelEvaluationError(message)

    def evaluate_bool(self, context: Activation) -> bool:
        if isinstance(context, SharedActivation):
            # The engine's activation, for the expressions judged most (validations and
            # matchConditions): Program.execute written out here, one call less each. A
            # program written alike in many policies ran already this request: its kept
            # outcome costs no call at all. (``evaluate`` goes through Program.execute.)
            program = self.program
            outcomes = context.outcomes
            kept = outcomes.get(program)
            try:
                if kept is None:
                    try:
                        result = program.closure(context)
                    except Exception as error:
                        outcomes[program] = (True, error)
                        raise
                    outcomes[program] = (False, result)
                elif kept[0]:
                    raise kept[1]
                else:
                    result = kept[1]
            except Exception as error:
                raise self.failure(error) from None
        elif isinstance(context, dict):
            try:
                result = self.program.execute(context)
            except Exception as error:
                raise self.failure(error) from None
        else:
            result = self.evaluate(context)
        if type(result) is not bool:
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
    program = compile_source(program_source)
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


def compile_source(source: str) -> Program:
    """``source`` (already checked, perhaps rewritten) compiled into one Python function
    (closures where it cannot be one: webhook/policy/cel/runtime/compiler.py)."""
    try:
        return compile_program(parse(source), source, EXTENSION_FUNCTIONS)
    except (CelSyntaxError, CelError) as error:
        raise CelCompileError(str(error)) from None


def _parse(source: str) -> Expr:
    try:
        return parse(source)
    except CelSyntaxError as error:
        raise CelCompileError(str(error)) from None


def _describe_failure(error: Exception, source: str) -> str:
    """The failure as a type-and-name message: never a value read from the input (the
    runtime's and the libraries' messages name types, operators and names only; admission
    objects hold secrets, and values never reach a log or a response)."""
    if isinstance(error, MissingKey):
        key = error.key
        if isinstance(key, str) and _written_in(key, source):
            return f"no such key: {key!r}"  # a key the policy spells out, not a value
        return "no such key (the key is computed from the input)"
    if isinstance(error, CelError | CelFunctionError):
        return str(error)
    if isinstance(error, RecursionError):
        return "evaluation failed (the value is nested too deeply)"
    return f"evaluation failed ({type(error).__name__})"


def _written_in(key: str, source: str) -> bool:
    return any(f"{quote}{key}{quote}" in source for quote in ("'", '"')) or (
        key.isidentifier() and f".{key}" in source
    )


def cel_type_name(value: Any) -> str:
    """A value's CEL type, for messages that must not show the value itself: the runtime's
    name (``uint``, ``google.protobuf.Timestamp``...), with null spelt as messages say it."""
    return "null" if value is None else type_name(value)


def _value_free(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` raising an error that names the function and its argument types only:
    a library error reaches policy messages and logs, which never show a value."""

    def failure(error: Exception, args: tuple[Any, ...]) -> CelFunctionError:
        if isinstance(error, LibraryError):  # Kubernetes' words, the value left out by design
            return CelFunctionError(f"{name}(): {error}")
        types = ", ".join(cel_type_name(arg) for arg in args)
        return CelFunctionError(f"{name}() failed on ({types}): {type(error).__name__}")

    @functools.wraps(function)
    def call(*args: Any) -> Any:
        try:
            return function(*args)
        except Exception as error:
            raise failure(error, args) from None

    # What generated code calls instead (runtime/codegen.py): the function itself, its
    # failure made into the same error inline, with no frame of this wrapper between.
    call.__cel_unwrapped__ = (function, failure)  # type: ignore[attr-defined]
    return call


# Every extension function, wrapped so its failures carry no values (see _value_free).
EXTENSION_FUNCTIONS = {name: _value_free(name, f) for name, f in _EXTENSIONS.items()}
