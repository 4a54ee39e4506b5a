"""Wiring the controllers into a built server: what ``serve`` runs beside the webhook when it
reads a real cluster.

* Policy and PolicyException objects are followed (unless ``--no-cluster-objects``);
  readiness waits until they have been read once, so a replica never serves without them.
* A Lease elects the replica that writes: Policy statuses, and the continuous audit's
  PolicyReports (``--audit-interval``; 0 turns it off).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes import client

from webhook.admission.server import Runtime
from webhook.cluster.connection import api_client_from_environment
from webhook.cluster.kube_informer import InformerSettings
from webhook.controllers.api import ObjectApi
from webhook.controllers.audit import ContinuousAudit
from webhook.controllers.exception_objects import ExceptionObjects
from webhook.controllers.kinds import (
    CLUSTER_POLICY_REPORT,
    POLICY,
    POLICY_EXCEPTION,
    POLICY_REPORT,
    CustomKind,
)
from webhook.controllers.leader import LeaderElector, LeaderSettings, default_namespace
from webhook.controllers.objects import ObjectWatch
from webhook.controllers.policy_objects import PolicyObjects
from webhook.controllers.reports import ReportWriter
from webhook.controllers.status import StatusWriter
from webhook.policy.exceptions import ExceptionRegistry

log = logging.getLogger("edgewarden.controllers")

LEASE = CustomKind("coordination.k8s.io", "v1", "Lease", "leases", namespaced=True)


@dataclass
class Timing:
    """How often the loops look; tests shorten these."""

    retry: float = 2.0  # a failed status write, a watch that has not synced
    informer: InformerSettings | None = None
    leader: LeaderSettings | None = None


class Controllers:
    def __init__(self, runtime: Runtime, api: client.ApiClient, *,
                 clock: Callable[[], float] = time.time, timing: Timing | None = None) -> None:
        settings = runtime.settings
        state = runtime.state
        self.timing = timing or Timing()
        self.registry = ExceptionRegistry()
        state.exceptions = self.registry
        state.metrics.watch_exceptions(lambda: self.registry.current, clock)
        self.exceptions = ExceptionObjects(self.registry, settings.exception_rules, clock)
        self.watch: ObjectWatch | None = None
        self.policies: PolicyObjects | None = None
        self.statuses: StatusWriter | None = None
        if settings.watches_cluster_objects:
            self.watch = ObjectWatch(api, (POLICY, POLICY_EXCEPTION), self.timing.informer)
            self.policies = PolicyObjects(runtime.reloader, clock,
                                          internal_lb_flavour=settings.internal_lb_flavour)
            self.statuses = StatusWriter(ObjectApi(api, POLICY))
        leader = self.timing.leader or LeaderSettings(
            namespace=settings.leader_election_namespace or default_namespace())
        self.elector = LeaderElector(ObjectApi(api, LEASE), leader, on_change=self._leadership)
        self.audit: ContinuousAudit | None = None
        if settings.audit_interval_seconds > 0:
            writer = ReportWriter(ObjectApi(api, POLICY_REPORT),
                                  ObjectApi(api, CLUSTER_POLICY_REPORT))
            self.audit = ContinuousAudit(state, self.registry, writer,
                                         interval=settings.audit_interval_seconds,
                                         leading=lambda: self.elector.leading, clock=clock)
        self.read_once = self.watch is None
        self._write_all = False
        state.readiness_checks.append(self.not_ready)

    def not_ready(self) -> str | None:
        if self.read_once:
            return None
        errors = sum(s.get("errors", 0) for s in self.watch.state().values()) if self.watch else 0
        return ("Policy and PolicyException objects not read yet"
                + (f" ({errors} list/watch failures: RBAC? see the log)" if errors else ""))

    def _leadership(self, leading: bool) -> None:
        # From the elector's worker thread: flags only, read by the loops.
        self._write_all = leading

    async def run(self) -> None:
        """Everything, until cancelled with the server."""
        tasks = [asyncio.create_task(self.elector.run(), name="leader-election")]
        if self.watch is not None:
            self.watch.start()
            tasks.append(asyncio.create_task(self._follow(), name="cluster-objects"))
        if self.audit is not None:
            tasks.append(asyncio.create_task(self.audit.run(), name="continuous-audit"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            # Once nothing elects any more: hand the Lease over now, not in lease_duration.
            await asyncio.to_thread(self.elector.release)
            if self.watch is not None:
                await asyncio.to_thread(self.watch.stop)

    async def _follow(self) -> None:
        assert self.watch is not None and self.policies is not None and self.statuses is not None
        watch, store = self.watch, self.watch.store
        pending_writes = False
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.changed.wait(), self.timing.retry)
            changed = watch.changed.is_set()
            watch.changed.clear()
            if not watch.synced:
                continue
            if changed or not self.read_once:
                self.exceptions.sync(store.items(POLICY_EXCEPTION.kind))
                before = self.policies.policies()
                await self.policies.sync(store.items(POLICY.kind))
                if self.audit is not None and self.policies.policies() != before:
                    self.audit.trigger()
                self.read_once = True
                pending_writes = True
            if self._write_all and self.elector.leading:
                self._write_all = False
                self.statuses.forget()
                pending_writes = True
            if pending_writes and self.elector.leading:
                failed = await asyncio.to_thread(self.statuses.write, dict(self.policies.statuses))
                pending_writes = failed > 0


def attach(
    runtime: Runtime, *, api: client.ApiClient | None = None,
    clock: Callable[[], float] = time.time, timing: Timing | None = None,
) -> Controllers | None:
    """Add the controllers to ``runtime`` (a server reading a real cluster); None otherwise."""
    if not runtime.settings.reads_the_api:
        return None
    controllers = Controllers(runtime, api or api_client_from_environment(), clock=clock,
                              timing=timing)
    runtime.background.append(controllers.run)
    return controllers
