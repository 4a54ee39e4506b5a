"""Leader election over a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

One replica holds the Lease and renews it every ``retry_period``; the others watch it. A
holder's claim is judged by when *we* last saw its record change, never by the timestamps
it wrote (replicas' clocks may disagree): a record unchanged for ``lease_duration`` means
its holder is gone, and another replica takes the Lease with a conditional update, so two
candidates racing for it cannot both win (the API server's resourceVersion check settles it).
A leader that cannot renew for ``renew_deadline`` stops acting as leader before anyone else
may take over (renew_deadline < lease_duration). On shutdown the leader releases the Lease,
so a rolling update hands over at once instead of after lease_duration.

Only the replica that leads writes: Policy statuses and PolicyReports. Admissions never
depend on it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from webhook.cluster.object_api import ApiFailure, ObjectApi

log = logging.getLogger("edgewarden.controllers")

LEASE_NAME = "edgewarden-leader"
SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


@dataclass(frozen=True)
class LeaderSettings:
    namespace: str
    name: str = LEASE_NAME
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


def default_namespace(fallback: str = "edgewarden") -> str:
    """The pod's own namespace (from its service account), else ``fallback``."""
    try:
        with open(SERVICE_ACCOUNT_NAMESPACE, encoding="utf-8") as file:
            return file.read().strip() or fallback
    except OSError:
        return fallback


def default_identity() -> str:
    """The pod's name (its hostname) and a random suffix: a restarted pod is a new holder."""
    return f"{os.environ.get('HOSTNAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


class LeaderElector:
    def __init__(
        self,
        leases: ObjectApi,
        settings: LeaderSettings,
        *,
        identity: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.leases = leases
        self.settings = settings
        self.identity = identity or default_identity()
        self._monotonic = monotonic
        self._wall = wall
        self._on_change = on_change
        self.leading = False
        self._observed: tuple[Any, ...] | None = None  # the holder's record, as last read
        self._observed_at = 0.0  # monotonic time it last changed
        self._renewed_at = 0.0  # monotonic time of our last successful acquire or renew

    # ---- one round ----

    def step(self) -> bool:
        """Acquire or renew once (blocking I/O); returns whether this replica leads now."""
        try:
            acquired = self._try_acquire_or_renew()
        except ApiFailure as error:
            log.debug("leader election: %s", error)
            acquired = False
        now = self._monotonic()
        if acquired:
            self._renewed_at = now
            self._set_leading(True)
        elif self.leading and now - self._renewed_at >= self.settings.renew_deadline:
            log.warning("leader election: could not renew the Lease %s/%s for %.0f s; "
                        "no longer leading", self.settings.namespace, self.settings.name,
                        now - self._renewed_at)
            self._set_leading(False)
        return self.leading

    def _try_acquire_or_renew(self) -> bool:
        settings = self.settings
        try:
            lease = self.leases.get(settings.name, settings.namespace)
        except ApiFailure as error:
            if not error.not_found:
                raise
            try:
                self.leases.create(self._lease(None))
            except ApiFailure as conflict:
                if conflict.conflict:
                    return False  # another replica created it first
                raise
            log.info("leader election: %s created and holds the Lease %s/%s", self.identity,
                     settings.namespace, settings.name)
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), spec.get("leaseTransitions"))
        now = self._monotonic()
        if record != self._observed:
            self._observed, self._observed_at = record, now
        duration = float(spec.get("leaseDurationSeconds") or settings.lease_duration)
        if holder and holder != self.identity and now - self._observed_at < duration:
            return False  # held, and renewed recently as far as we have seen
        try:
            self.leases.replace(self._lease(lease))
        except ApiFailure as error:
            if error.conflict:
                return False  # someone else updated it first: their claim stands
            raise
        if holder != self.identity:
            log.info("leader election: %s took over the Lease %s/%s from %s", self.identity,
                     settings.namespace, settings.name, holder or "nobody")
        return True

    def _lease(self, current: dict[str, Any] | None) -> dict[str, Any]:
        settings = self.settings
        now = _micro_time(self._wall())
        spec = dict((current or {}).get("spec") or {})
        taking_over = spec.get("holderIdentity") != self.identity
        metadata: dict[str, Any] = {"name": settings.name, "namespace": settings.namespace}
        if current is not None:
            metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
        spec.update(holderIdentity=self.identity,
                    leaseDurationSeconds=int(settings.lease_duration), renewTime=now)
        if taking_over:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (
                1 if current is not None else 0)
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": metadata, "spec": spec}

    def release(self) -> None:
        """Give the Lease up (on shutdown) so another replica need not wait it out."""
        if not self.leading:
            return
        self._set_leading(False)
        try:
            lease = self.leases.get(self.settings.name, self.settings.namespace)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return
            lease["spec"] = {**spec, "holderIdentity": None, "leaseDurationSeconds": 1,
                             "renewTime": _micro_time(self._wall())}
            self.leases.replace(lease)
        except ApiFailure as error:
            log.info("leader election: could not release the Lease (%s); it expires", error)

    def _set_leading(self, leading: bool) -> None:
        if leading == self.leading:
            return
        self.leading = leading
        log.info("leader election: %s %s", self.identity,
                 "now leads" if leading else "stopped leading")
        if self._on_change is not None:
            self._on_change(leading)

    # ---- the loop ----

    async def run(self) -> None:
        """Elect forever; cancel to stop (then ``release``: the owner does, once stopped)."""
        while True:
            await asyncio.to_thread(self.step)
            await asyncio.sleep(self.settings.retry_period)


def _micro_time(at: float) -> str:
    """metav1.MicroTime: RFC 3339 with microseconds, UTC."""
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
