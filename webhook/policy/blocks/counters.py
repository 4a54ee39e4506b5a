"""Limits outside the request path: what counts toward a cap, and the cap in a namespace.

Admission, ``audit`` and ``quota`` all ask these questions; the answers come from here so
the three cannot drift (which namespaces a cap applies to, what ``maxExpression`` gives).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.policy.blocks.protocol import PolicyEvaluationError
from webhook.policy.cel.expression import CelEvaluationError, CelExpression, cel_type_name
from webhook.policy.cel.projection import Projection, merge, project, selected_paths
from webhook.policy.model.namespaces import namespace_labels, namespace_name, namespace_object
from webhook.policy.model.nulls import without_nulls
from webhook.policy.model.policy import Limit, Policy


@dataclass(frozen=True, slots=True)
class LimitCounter:
    """Counts existing objects for one limit policy (its ``where``): an ObjectCounter."""

    key: str
    kind: str
    where: CelExpression | None
    projection: Projection = None

    @classmethod
    def for_policy(cls, policy: Policy, kind: str) -> LimitCounter:
        assert policy.limit is not None
        where = policy.limit.where
        key = f"{policy.name}/{kind}:{where.source if where else '*'}"
        return cls(key, kind, where, _where_projection(where))

    def counts(self, obj: Mapping[str, Any]) -> bool:
        if self.where is None:
            return True
        try:
            value = without_nulls(project(obj, self.projection))
            return self.where.evaluate({"object": value}) is True
        except CelEvaluationError:
            return False


def _where_projection(where: CelExpression | None) -> Projection:
    if where is None:
        return None
    return merge(selected_paths(where.program_source or where.source).get("object", [()]))


def cap_in_namespace(policy: Policy, namespace: Mapping[str, Any]) -> int | None:
    """The cap ``policy`` sets for a CREATE in ``namespace``; None where it does not apply.

    "Applies" is decided as an admission decides it: the excluded namespaces and the
    namespace selector (with the automatic name label). A ``maxExpression`` that fails for
    this namespace gives None too: admission would follow the policy's failurePolicy, and
    there is no cap to report.
    """
    if policy.limit is None or "CREATE" not in policy.match.operations:
        return None
    name = namespace_name(namespace)
    if name in policy.match.exclude.namespaces:
        return None
    selector = policy.match.namespace_selector
    if selector is not None and not selector.matches(namespace_labels(name, namespace)):
        return None
    try:
        return cap_for_namespace_object(policy.limit, namespace_object(name, namespace))
    except PolicyEvaluationError:
        return None


def cap_for_namespace_object(limit: Limit, namespace_object: Mapping[str, Any]) -> int:
    """The cap ``limit`` sets where CEL's ``namespaceObject`` is ``namespace_object``."""
    if limit.max_expression is None:
        assert limit.max is not None
        return limit.max
    try:
        value = limit.max_expression.evaluate({"namespaceObject": namespace_object})
    except CelEvaluationError as error:
        raise max_expression_failed(limit, str(error)) from None
    return checked_max(limit, value)


def max_expression_failed(limit: Limit, error: str) -> PolicyEvaluationError:
    assert limit.max_expression is not None
    return PolicyEvaluationError(
        f"limit.maxExpression `{limit.max_expression.source}` failed: {error}"
    )


def checked_max(limit: Limit, value: Any) -> int:
    """``maxExpression``'s value as a cap; anything but a non-negative int is an error."""
    assert limit.max_expression is not None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PolicyEvaluationError(
            f"limit.maxExpression `{limit.max_expression.source}` gave "
            + ("a negative int" if isinstance(value, int) and not isinstance(value, bool)
               else f"a {cel_type_name(value)}")
            + ", expected a non-negative int"
        )
    return value
