"""Writing each Policy object's status, through the status subresource, from the leader only.

Every replica judges every Policy object the same way (same loader, same guards, same
cluster), so one writer is enough, and one writer cannot flap a status between replicas'
clocks. A write that fails is tried again on the next round; one the object already
carries (as far as this writer knows) is not repeated. A new leader writes everything once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from webhook.controllers.api import ApiFailure, ObjectApi
from webhook.controllers.policy_objects import PolicyStatus
from webhook.policy.exceptions import rfc3339

log = logging.getLogger("edgewarden.controllers")


class StatusWriter:
    def __init__(self, policies: ObjectApi) -> None:
        self.policies = policies
        self._written: dict[str, dict[str, Any]] = {}

    def forget(self) -> None:
        """Write everything on the next round (leadership changed hands)."""
        self._written.clear()

    def write(self, statuses: Mapping[str, PolicyStatus]) -> int:
        """Write the statuses that changed; returns how many writes failed (to retry)."""
        failed = 0
        for name in [n for n in self._written if n not in statuses]:
            del self._written[name]
        for name, status in sorted(statuses.items()):
            body = status.body(_seconds)
            if self._written.get(name) == body:
                continue
            try:
                self.policies.patch_status(name, body)
            except ApiFailure as error:
                if error.not_found:
                    continue  # deleted meanwhile: nothing to write on
                failed += 1
                log.warning("could not write the status of Policy %s (%s); trying again",
                            name, error)
                continue
            self._written[name] = body
        return failed


def _seconds(at: float) -> str:
    """metav1.Time: RFC 3339 to the second."""
    return rfc3339(float(int(at)))
