"""The ``validations`` block: CEL that must hold, as in ValidatingAdmissionPolicy.

The first failing validation speaks (its ``messageExpression``, else ``message``, else the
expression itself); the ones after it are not run.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from webhook.policy.blocks.protocol import (
    BODY_VARIABLES,
    Block,
    Builder,
    Compiled,
    CompiledBlock,
    PolicyEvaluationError,
    Rewrite,
    Run,
    Slot,
)
from webhook.policy.cel.expression import CelEvaluationError
from webhook.policy.model.block import Phase
from webhook.policy.model.decision import ViolationSource
from webhook.policy.model.policy import Policy, Validation

Validations = tuple[Validation, ...]


class ValidationsBlock(Block[Validations]):
    name: ClassVar[str] = "validations"
    phase: ClassVar[Phase] = Phase.VALIDATE
    field: ClassVar[str | None] = "validations"
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["expression"],
            "properties": {
                "expression": {"type": "string", "minLength": 1},
                "message": {"type": "string", "minLength": 1},
                "messageExpression": {"type": "string", "minLength": 1},
            },
        },
    }

    def build(self, raw: Any, builder: Builder) -> Validations | None:
        built = tuple(self._one(i, item, builder) for i, item in enumerate(raw))
        return tuple(v for v in built if v is not None)

    @staticmethod
    def _one(index: int, raw: Mapping[str, Any], builder: Builder) -> Validation | None:
        path = ("spec", "validations", index)
        expression = builder.cel(raw["expression"], (*path, "expression"), BODY_VARIABLES)
        message_expression = None
        if "messageExpression" in raw:
            message_expression = builder.cel(
                raw["messageExpression"], (*path, "messageExpression"), BODY_VARIABLES
            )
        if expression is None:
            return None
        return Validation(expression, raw.get("message"), message_expression)

    def slots(self, data: Validations) -> Iterator[Slot]:
        for i, validation in enumerate(data):
            yield Slot(("spec", "validations", i, "expression"), validation.expression, "bool")
            if validation.message_expression is not None:
                path = ("spec", "validations", i, "messageExpression")
                yield Slot(path, validation.message_expression, "string")

    def compile(self, data: Validations, policy: Policy, rewrite: Rewrite) -> CompiledBlock:
        rewritten = tuple(
            Validation(
                rewrite(v.expression),
                v.message,
                None if v.message_expression is None else rewrite(v.message_expression),
            )
            for v in data
        )

        # A validation that reads no policy variable judges the request's context as it is:
        # with 100 policies, asking for a context per policy was a tenth of a request.
        plain = tuple(not v.expression.policy_variables for v in rewritten)
        # What each validation says without its messageExpression, told once here.
        fallbacks = tuple(static_message(v) for v in rewritten)

        def judge(run: Run) -> None:
            for index, validation in enumerate(rewritten):
                context = run.activation if plain[index] else run.context(validation.expression)
                try:
                    passed = validation.expression.evaluate_bool(context)
                except CelEvaluationError as error:
                    raise PolicyEvaluationError(
                        f"expression `{validation.expression.source}` failed: "
                        + run.explain(str(error))
                    ) from None
                if not passed:
                    expressive = run.message_affordable(index)
                    run.violation(message(validation, run, fallbacks[index], expressive),
                                  ViolationSource.VALIDATION)
                    return  # like ValidatingAdmissionPolicy: the first failing one speaks

        return Compiled(judge)


def message(validation: Validation, run: Run, fallback: str, expressive: bool = True) -> str:
    """The violation's message: messageExpression (when ``expressive``: affordable), else
    ``fallback`` (static_message)."""
    if validation.message_expression is not None and expressive:
        try:
            context = run.context(validation.message_expression)
            text = validation.message_expression.evaluate(context)
            if isinstance(text, str) and text.strip():
                return " ".join(text.split())
        except (CelEvaluationError, PolicyEvaluationError):
            pass  # as in Kubernetes: fall back to message, then to the expression
    return fallback


def static_message(validation: Validation) -> str:
    """``message`` on one line, else the failed expression."""
    if validation.message:
        return " ".join(str(validation.message).split())
    return f"failed expression: {validation.expression.source}"
