"""The ``limit`` block: at most N objects that count (``where``) per namespace.

The cap is ``max`` or ``maxExpression`` (over ``namespaceObject``). The cluster backend
keeps, for every counter this block names (one per matched kind), the names of the objects
that count in each namespace; an allowed CREATE claims a place (a LimitClaim), which the
admission edge reserves. Counting and caps outside admission live in counters.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from webhook.policy.blocks.counters import LimitCounter, checked_max, max_expression_failed
from webhook.policy.blocks.protocol import (
    NAMESPACE_ONLY,
    OBJECT_ONLY,
    Block,
    Builder,
    Compiled,
    CompiledBlock,
    PolicyEvaluationError,
    Rewrite,
    Run,
    Slot,
    YamlPath,
)
from webhook.policy.cel.expression import CelEvaluationError
from webhook.policy.model.block import Phase
from webhook.policy.model.decision import LimitClaim, ViolationSource
from webhook.policy.model.policy import Limit, Policy


class LimitBlock(Block[Limit]):
    name: ClassVar[str] = "limit"
    phase: ClassVar[Phase] = Phase.VALIDATE
    field: ClassVar[str | None] = "limit"
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "oneOf": [{"required": ["max"]}, {"required": ["maxExpression"]}],
        "properties": {
            "where": {"type": "string", "minLength": 1},
            "max": {"type": "integer", "minimum": 0},
            "maxExpression": {"type": "string", "minLength": 1},
            "message": {"type": "string", "minLength": 1},
        },
    }

    def schema_message(self, keyword: str, where: YamlPath) -> str | None:
        if keyword == "oneOf" and where == ():
            return "a limit needs exactly one of max or maxExpression"
        return None

    def build(self, raw: Any, builder: Builder) -> Limit | None:
        where = (
            builder.cel(raw["where"], ("spec", "limit", "where"), OBJECT_ONLY)
            if "where" in raw
            else None
        )
        max_expression = None
        if "maxExpression" in raw:
            max_expression = builder.cel(
                raw["maxExpression"], ("spec", "limit", "maxExpression"), NAMESPACE_ONLY
            )
        return Limit(
            where=where,
            max=raw.get("max"),
            max_expression=max_expression,
            message=raw.get("message"),
        )

    def slots(self, data: Limit) -> Iterator[Slot]:
        if data.where is not None:
            yield Slot(("spec", "limit", "where"), data.where, "bool")
        if data.max_expression is not None:
            yield Slot(("spec", "limit", "maxExpression"), data.max_expression, "int")

    def compile(self, data: Limit, policy: Policy, rewrite: Rewrite) -> CompiledBlock:
        # The counters judge stored objects with the expression as written; the request's
        # own object is judged through the shared bindings like every other expression.
        counters = {
            kind: LimitCounter.for_policy(policy, kind) for kind in sorted(policy.match.kinds)
        }
        limit = Limit(
            where=None if data.where is None else rewrite(data.where),
            max=data.max,
            max_expression=None if data.max_expression is None else rewrite(data.max_expression),
            message=data.message,
        )

        def judge(run: Run) -> None:
            request = run.request
            if request.operation not in ("CREATE", "UPDATE") or run.object is None:
                return  # DELETE only frees room; CONNECT has no object
            counter = counters[request.key]
            if not _counts(limit, run):
                return
            old = request.old_object if request.operation == "UPDATE" else None
            if old is not None and counter.counts(old):
                return  # already counted: lowering a cap must never freeze existing objects
            maximum = _maximum(limit, run)
            names = run.cluster.counted_names(request.namespace, counter)
            current = len(names) - (1 if request.name in names else 0)
            if current >= maximum:
                what = limit.message or f"at most {maximum} {request.kind} objects may count here"
                run.violation(
                    f"{what} (namespace {request.namespace} has {current} of {maximum})",
                    ViolationSource.LIMIT,
                )
                return
            run.claim(LimitClaim(run.policy_name, counter.key, request.key, request.namespace,
                                 request.name, maximum))

        return Compiled(
            judge,
            counters=tuple(counters.values()),
            reads_cluster=True,
            namespace_only=() if limit.max_expression is None else (limit.max_expression,),
        )


def _counts(limit: Limit, run: Run) -> bool:
    context = run.context(limit.where)
    if limit.where is None:
        return True
    try:
        return limit.where.evaluate_bool(context)
    except CelEvaluationError as error:
        raise PolicyEvaluationError(
            f"limit.where `{limit.where.source}` failed: {run.explain(str(error))}"
        ) from None


def _maximum(limit: Limit, run: Run) -> int:
    if limit.max_expression is None:
        assert limit.max is not None
        return limit.max
    try:
        value = run.evaluate(limit.max_expression)
    except CelEvaluationError as error:
        raise max_expression_failed(limit, run.explain(str(error))) from None
    return checked_max(limit, value)
