"""Static checks of policies at load: functions, fields, result types, cost.

Everything here runs once per policy load (``validate``, ``test``, ``check``, ``serve``
start and reload), on the syntax tree of each expression; nothing runs per request.
"""

from webhook.policy.checks.policy import PolicyFinding, check_policy
from webhook.policy.checks.schemas import PackagedSchemas, SchemaProvider, Schemas

__all__ = ["PackagedSchemas", "PolicyFinding", "SchemaProvider", "Schemas", "check_policy"]
