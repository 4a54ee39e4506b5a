"""Static checks of policies at load: functions, fields, result types, cost.

Everything here runs once per policy load (``validate``, ``test``, ``check``, ``serve``
start and reload), on the syntax tree of each expression; nothing runs per request.
"""

from webhook.policy.checks.cost import Estimate
from webhook.policy.checks.policy import (
    PolicyChecks,
    PolicyCost,
    PolicyFinding,
    check_policy,
    estimate_policy,
)
from webhook.policy.checks.schemas import PackagedSchemas, SchemaProvider, Schemas

__all__ = [
    "Estimate",
    "PackagedSchemas",
    "PolicyChecks",
    "PolicyCost",
    "PolicyFinding",
    "SchemaProvider",
    "Schemas",
    "check_policy",
    "estimate_policy",
]
