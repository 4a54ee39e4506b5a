"""One conformance case through edgewarden's public CEL path, as the engine runs it.

``compile_expression`` (webhook/policy/cel/expression.py) compiles the expression with the
case's variables as the allowed names, and the evaluation binds what the engine's request
context binds (webhook/policy/engine/context.py): each variable, and the extension
functions the expression calls. Whatever runtime the engine uses is what this tests; when
the engine's way of evaluating changes, :func:`run` changes with it, and nothing else here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cel

from tests.cel_conformance.cases import Case, binding_value, same
from webhook.policy.cel.expression import (
    EXTENSION_FUNCTIONS,
    CelCompileError,
    CelEvaluationError,
    compile_expression,
)


@dataclass(frozen=True)
class Outcome:
    """What the runtime made of a case: a value, or an error at ``stage``."""

    value: Any = None
    stage: str | None = None  # "compile" or "evaluate" when it failed, else None
    error: str = ""

    def show(self) -> str:
        if self.stage is None:
            return f"value {self.value!r}"
        return f"{self.stage} error: {self.error}"


def run(case: Case) -> Outcome:
    """Compile and evaluate ``case``'s expression with its variables bound."""
    try:
        compiled = compile_expression(case.expr, allowed=frozenset(case.bindings))
    except CelCompileError as error:
        return Outcome(stage="compile", error=str(error))
    context = cel.Context()
    for name, value in case.bindings.items():
        context.add_variable(name, binding_value(value))
    for function in compiled.functions:
        context.add_function(function, EXTENSION_FUNCTIONS[function])
    try:
        return Outcome(value=compiled.evaluate(context))
    except CelEvaluationError as error:
        return Outcome(stage="evaluate", error=str(error))
    except BaseException as error:  # a Rust panic (pyo3) is a BaseException
        if isinstance(error, KeyboardInterrupt | SystemExit):
            raise
        # Not an evaluation error the engine can report: it would escape the request.
        return Outcome(stage="crash", error=type(error).__name__)


def passes(case: Case, outcome: Outcome) -> bool:
    """Whether ``outcome`` is what cel-spec expects: any compile or evaluation error where
    an error is expected (cel-spec leaves the message to the implementation), else the
    expected value. A crash never passes."""
    if case.expects_error:
        return outcome.stage in ("compile", "evaluate")
    return outcome.stage is None and same(case.expected, outcome.value)
