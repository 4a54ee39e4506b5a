"""Static checks of CEL expressions at load: functions, fields, result types, cost.

The checks of one whole policy (every expression against every kind it matches) build on
these in webhook/policy/load/policy_checks.py. Everything here runs once per policy load
(``validate``, ``test``, ``check``, ``serve`` start and reload), on the syntax tree of each
expression; nothing runs per request.
"""

from webhook.policy.cel.checks.cost import Estimate
from webhook.policy.cel.checks.schemas import PackagedSchemas, SchemaProvider, Schemas

__all__ = [
    "Estimate",
    "PackagedSchemas",
    "SchemaProvider",
    "Schemas",
]
