"""``serve --manage-quotas``: a ResourceQuota on ``services.loadbalancers`` in every namespace
a LoadBalancer cap applies to, equal to that cap.

The webhook's own count is exact only within one replica: two CREATEs that reach different
replicas at the same moment can both pass. The API server's quota admission is a
compare-and-swap on the quota's status, so with the quota in place the cap is exact for any
number of replicas; edgewarden's denial still comes first wherever it sees the count, with
its friendly message, and the quota refuses the rest (`exceeded quota: edgewarden-lo...`).

Only the leading replica writes. It owns exactly the quotas named ``edgewarden-loadbalancers``
labelled ``app.kubernetes.io/managed-by: edgewarden``: it creates them, corrects their
``hard`` when a cap changes (namespace annotation, policy reload), and deletes them when a
cap goes away. A quota of that name without the label is somebody else's and is left alone
(logged once). API-server writes: one per namespace whose cap appears, changes or goes, none
while nothing changes (a full resync every ``interval`` only reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.admission.state import ServerState
from webhook.cluster.object_api import ApiFailure
from webhook.cluster.quota_api import QuotaApi
from webhook.offline.quota import (
    MANAGED_BY,
    QUOTA_KEY,
    QUOTA_NAME,
    caps_in_namespaces,
    quota_object,
)

log = logging.getLogger("edgewarden.controllers")

OWNED = ",".join(f"{key}={value}" for key, value in MANAGED_BY.items())


@dataclass
class QuotaSync:
    """What one pass did."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return len(self.created) + len(self.updated) + len(self.deleted)


class QuotaManager:
    def __init__(self, state: ServerState, quotas: QuotaApi, *,
                 leading: Callable[[], bool], interval: float = 30.0) -> None:
        self.state = state
        self.quotas = quotas
        self.leading = leading
        self.interval = interval
        self.passes = 0
        self.writes = 0
        self._wake = asyncio.Event()
        self._foreign_logged: set[str] = set()

    def trigger(self) -> None:
        """Sync soon (a policy reload, a namespace change)."""
        self._wake.set()

    def desired(self) -> dict[str, int]:
        loaded = self.state.policies
        if loaded is None or not self.state.cluster.synced:
            return {}
        namespaces = {str((ns.get("metadata") or {}).get("name")): ns
                      for ns in self.state.cluster.namespaces()}
        policies = loaded.engine.policies
        return caps_in_namespaces(namespaces, policies, loaded.engine)

    def sync_once(self) -> QuotaSync | None:
        """One pass (blocking I/O); None when there is nothing to judge by yet."""
        if self.state.policies is None or not self.state.cluster.synced:
            return None
        wanted = self.desired()
        owned = self.quotas.owned()
        result = QuotaSync()
        for namespace, cap in wanted.items():
            body = quota_object(namespace, cap)
            current = owned.get(namespace)
            try:
                if current is None:
                    self.quotas.create(namespace, body)
                    result.created.append(namespace)
                elif _hard(current) != str(cap):
                    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                    self.quotas.replace(namespace, body)
                    result.updated.append(namespace)
            except ApiFailure as error:
                if error.conflict and current is None:
                    self._foreign(namespace)  # a quota of that name that is not ours
                else:
                    log.warning("quota %s/%s: %s", namespace, QUOTA_NAME, error)
                result.failed.append(namespace)
        for namespace in sorted(set(owned) - set(wanted)):
            try:
                self.quotas.delete(namespace)
                result.deleted.append(namespace)
            except ApiFailure as error:
                if not error.not_found:
                    log.warning("quota %s/%s: %s", namespace, QUOTA_NAME, error)
                    result.failed.append(namespace)
        self.passes += 1
        self.writes += result.writes
        if result.writes:
            log.info("quotas: %d created, %d updated, %d deleted", len(result.created),
                     len(result.updated), len(result.deleted))
        return result

    def _foreign(self, namespace: str) -> None:
        if namespace not in self._foreign_logged:
            self._foreign_logged.add(namespace)
            log.warning("quota %s/%s exists and is not labelled %s: left alone (the cap there "
                        "is enforced by edgewarden alone)", namespace, QUOTA_NAME, OWNED)

    async def run(self) -> None:
        """Sync on a trigger or every ``interval`` while leading, until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            if self.leading():
                await asyncio.to_thread(self.sync_once)


def _hard(quota: Mapping[str, Any]) -> str | None:
    hard = (quota.get("spec") or {}).get("hard") or {}
    value = hard.get(QUOTA_KEY)
    return None if value is None else str(value)
