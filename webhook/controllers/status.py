"""Writing each Policy object's status, through the status subresource, from the leader only.

Every replica judges every Policy object the same way (same loader, same guards, same
cluster), so one writer is enough, and one writer cannot flap a status between replicas'
clocks. A write that fails is tried again on the next round; one the object already
carries (as far as this writer knows) is not repeated. A new leader writes everything once.

A status that turns Ready=False is also told as a Warning Event (events.k8s.io/v1, in
edgewarden's own namespace, where its Role may create them; ``kubectl describe`` and
``kubectl events --for`` find events about a cluster-scoped object in any namespace), once
per generation
and reason (named ``NAME.gGENERATION.REASON``), so ``kubectl events --for policy/NAME``
shows it. Events are best effort: one
the API server refuses (no RBAC for events) is logged once and not tried again.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from webhook.cluster.object_api import ApiFailure, ObjectApi
from webhook.cluster.own_kinds import EVENT, POLICY
from webhook.controllers.policy_objects import PolicyStatus
from webhook.policy.model.exceptions import rfc3339

log = logging.getLogger("edgewarden.controllers")

EVENT_NAMESPACE = "default"  # where events go when no namespace of our own is given
REPORTING_CONTROLLER = "edgewarden.dev/policy-controller"
NOTE_LIMIT = 1024  # events.k8s.io/v1 refuses a longer note
HTTP_FORBIDDEN = 403


class StatusWriter:
    def __init__(self, policies: ObjectApi, events: ObjectApi | None = None, *,
                 instance: str | None = None, clock: Callable[[], float] = time.time,
                 event_namespace: str = EVENT_NAMESPACE) -> None:
        self.policies = policies
        self.event_namespace = event_namespace
        self.events = events if events is not None else ObjectApi(policies.api, EVENT)
        self.instance = instance or socket.gethostname()
        self.clock = clock
        self._written: dict[str, dict[str, Any]] = {}
        self._told: set[tuple[str, int, str]] = set()  # (name, generation, reason) evented
        self._events_refused = False

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
            if not status.ready:
                self._event(name, status)
        return failed

    def _event(self, name: str, status: PolicyStatus) -> None:
        told = (name, status.generation, status.reason)
        if told in self._told or self._events_refused:
            return
        self._told.add(told)
        try:
            self.events.create(event_body(name, status, self.instance, self.clock(),
                                          namespace=self.event_namespace))
        except ApiFailure as error:
            if error.conflict:
                return  # told already (by the leader before this one)
            if error.status in (HTTP_FORBIDDEN, 404):
                self._events_refused = True
                log.warning("cannot create Events (%s): Policy failures are told in their "
                            "status and this log only", error)
            else:
                log.warning("could not create the Event for Policy %s (%s)", name, error)


def event_body(name: str, status: PolicyStatus, instance: str, at: float, *,
               namespace: str = EVENT_NAMESPACE) -> dict[str, Any]:
    """An events.k8s.io/v1 Warning about Policy ``name``'s status."""
    moment = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    regarding: dict[str, Any] = {"apiVersion": POLICY.api_version, "kind": POLICY.kind,
                                 "name": name}
    if status.uid:
        regarding["uid"] = status.uid
    note = status.message
    if len(note) > NOTE_LIMIT:
        note = note[: NOTE_LIMIT - 1] + "…"
    return {
        "apiVersion": EVENT.api_version,
        "kind": EVENT.kind,
        # One name per generation and reason: a new leader telling it again gets 409.
        "metadata": {"name": f"{name}.g{status.generation}.{status.reason.lower()}",
                     "namespace": namespace},
        "eventTime": moment,
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": instance[:128],
        "action": "Load",
        "reason": status.reason,
        "type": "Warning",
        "regarding": regarding,
        "note": note,
    }


def _seconds(at: float) -> str:
    """metav1.Time: RFC 3339 to the second."""
    return rfc3339(float(int(at)))
