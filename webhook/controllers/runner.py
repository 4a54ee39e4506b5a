"""Wiring the controllers into a built server: what ``serve`` runs beside the webhook when it
reads a real cluster.

* Policy and PolicyException objects are followed (unless ``--no-cluster-objects``);
  readiness waits until they have been read once, so a replica never serves without them,
  but not forever: when they cannot be read within ``objects_wait`` seconds (the API server
  is down at start) and the policy files gave a set, the replica serves that and /readyz
  says so under ``clusterObjects``.
* A Lease elects the replica that writes: Policy statuses, and the continuous audit's
  PolicyReports (``--audit-interval``; 0 turns it off).
* ``--register-webhooks``: the leader keeps the webhook configurations
  (webhook/controllers/registration.py).

Each loop is a part of the server's supervisor (webhook/serve): restarted with backoff when it
fails, logged, counted. ``cluster-objects`` makes the pod unready when it has failed for
longer than the cache's staleness bound, and so does a Policy/PolicyException watch that is
stale: a deleted PolicyException must not keep exempting. ``leader-election`` and
``continuous-audit`` never make it unready: they only write statuses and reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from webhook.admission.policies_reload import PolicyReloader
from webhook.admission.settings import PolicySettings
from webhook.admission.state import ServerState, stale_cache_reasons
from webhook.background import BackgroundWork
from webhook.certs.settings import CertificateSettings
from webhook.cluster.claims import ClaimBook
from webhook.cluster.connection import ApiClient
from webhook.cluster.kube_informer import InformerSettings
from webhook.cluster.object_api import ObjectApi
from webhook.cluster.object_watch import ObjectWatch
from webhook.cluster.own_kinds import (
    CLUSTER_POLICY_REPORT,
    LEASE,
    POLICY,
    POLICY_EXCEPTION,
    POLICY_REPORT,
)
from webhook.cluster.quota_api import QuotaApi
from webhook.cluster.settings import CacheSettings
from webhook.cluster.webhook_configurations import RestApi, WebhookConfigurationApi
from webhook.controllers.claims import ClaimCollector
from webhook.controllers.continuous_reports import ContinuousReports
from webhook.controllers.exception_objects import ExceptionObjects, ExceptionStatusWriter
from webhook.controllers.leader import LeaderElector, LeaderSettings, default_namespace
from webhook.controllers.policy_objects import PolicyObjects
from webhook.controllers.quotas import OWNED, QuotaManager
from webhook.controllers.registration import PausableObjectApi, WebhookRegistration
from webhook.controllers.reports import ReportWriter
from webhook.controllers.settings import ControllerSettings
from webhook.controllers.status import StatusWriter
from webhook.offline.quota import QUOTA_NAME
from webhook.policy.model.exceptions import ExceptionRegistry

log = logging.getLogger("edgewarden.controllers")

@dataclass
class Timing:
    """How often the loops look; tests shorten these."""

    retry: float = 2.0  # a failed status write, a watch that has not synced
    informer: InformerSettings | None = None
    leader: LeaderSettings | None = None
    # How long readiness waits for the Policy objects before serving the files alone.
    objects_wait: float = 60.0


class Controllers:
    """The controllers of one server, given every dependency by the composition root
    (webhook/serve); they write to the cluster, the exception registry and the reloader,
    and change nothing of the server's after they are built."""

    def __init__(self, settings: ControllerSettings, *, state: ServerState,
                 reloader: PolicyReloader, exceptions: ExceptionRegistry, api: ApiClient,
                 policies: PolicySettings, cache: CacheSettings, follow_objects: bool,
                 certificates: CertificateSettings,
                 claims: ClaimBook | None = None, claims_interval: float = 1.0,
                 clock: Callable[[], float] = time.time, timing: Timing | None = None) -> None:
        self.timing = timing or Timing()
        self.registry = exceptions
        self.exceptions = ExceptionObjects(self.registry, policies.exception_rules, clock)
        self.exception_statuses = ExceptionStatusWriter(ObjectApi(api, POLICY_EXCEPTION))
        self.watch: ObjectWatch | None = None
        self.policies: PolicyObjects | None = None
        self.statuses: StatusWriter | None = None
        self._stale_after = cache.stale_after
        namespace = settings.leader_namespace or default_namespace()
        if follow_objects:
            self.watch = ObjectWatch(api, (POLICY, POLICY_EXCEPTION),
                                     self.timing.informer or cache.informer())
            self.policies = PolicyObjects(reloader, clock,
                                          internal_lb_flavour=policies.internal_lb_flavour)
            self.statuses = StatusWriter(ObjectApi(api, POLICY), event_namespace=namespace)
        leader = self.timing.leader or LeaderSettings(
            namespace=namespace, name=settings.leader_lease)
        self.registration: WebhookRegistration | None = None
        if settings.registration is not None:
            self.registration = WebhookRegistration(
                state, certificates, settings.registration,
                WebhookConfigurationApi(RestApi(api)), leading=lambda: self.elector.leading,
                lease_name=settings.leader_lease)
        leases = (ObjectApi(api, LEASE) if self.registration is None
                  else PausableObjectApi(api, LEASE, paused=self.uninstalling))
        self.elector = LeaderElector(leases, leader, on_change=self._leadership)
        self.reports: ContinuousReports | None = None
        if settings.report_interval_seconds > 0:
            writer = ReportWriter(ObjectApi(api, POLICY_REPORT),
                                  ObjectApi(api, CLUSTER_POLICY_REPORT))
            self.reports = ContinuousReports(state, self.registry, writer,
                                             interval=settings.report_interval_seconds,
                                             leading=self._writes, clock=clock)
        self.quotas: QuotaManager | None = None
        if settings.manage_quotas:
            self.quotas = QuotaManager(state, QuotaApi(api, name=QUOTA_NAME, owned=OWNED),
                                       leading=self._writes,
                                       interval=settings.quota_interval_seconds)
        self.claims: ClaimCollector | None = None
        if claims is not None:  # the book the handlers' gate writes (webhook/serve/build.py)
            self.claims = ClaimCollector(state, claims, leading=lambda: self.elector.leading,
                                         interval=claims_interval)
        self.read_once = self.watch is None
        self._write_all = False
        self._created = time.monotonic()
        self._files_gave_policies = bool(state.policies is not None and state.policies.names)

    def _waited_out(self) -> bool:
        """Policy objects unread for ``objects_wait`` s, with file policies to serve."""
        return (self._files_gave_policies
                and time.monotonic() - self._created >= self.timing.objects_wait)

    def not_ready(self) -> str | None:
        if self.watch is None:
            return None
        if not self.read_once:
            if self._waited_out():
                return None  # serve the files; objects_status says so
            errors = sum(s.get("errors", 0) for s in self.watch.state().values())
            return ("Policy and PolicyException objects not read yet"
                    + (f" ({errors} list/watch failures: RBAC? see the log)" if errors else ""))
        stale = stale_cache_reasons(self.watch.state())
        return "; ".join(stale) or None

    def objects_status(self) -> dict[str, object]:
        if self.watch is None:
            return {"followed": False}
        if self.read_once:
            return {"followed": True, "read": True}
        return {"followed": True, "read": False,
                "serving": "the policy files" if self._waited_out() else "nothing yet",
                "note": "Policy and PolicyException objects not read yet: the API server is "
                        "unreachable or refuses the list (see the log)"}

    def uninstalling(self) -> bool:
        return self.registration is not None and self.registration.uninstalling

    def _writes(self) -> bool:
        """The leader writes quotas and reports, except while an uninstall removes them."""
        return self.elector.leading and not self.uninstalling()

    def _leadership(self, leading: bool) -> None:
        # From the elector's worker thread: flags only, read by the loops (the quota manager
        # looks at its next interval).
        self._write_all = leading

    def work(self) -> list[BackgroundWork]:
        """The loops the server's supervisor runs (see the module's docstring)."""
        work = [BackgroundWork("leader-election", self.elector.run)]
        if self.watch is not None:
            work.append(BackgroundWork("cluster-objects", self.follow,
                                       unready_after=self._stale_after))
        if self.reports is not None:
            work.append(BackgroundWork("continuous-audit", self.reports.run))
        if self.quotas is not None:
            # Never unready: without the quotas the webhook's own count still holds per
            # replica; the failure is logged, counted and alerted on.
            work.append(BackgroundWork("quota-manager", self.quotas.run))
        if self.registration is not None:
            # Never unready: the configurations already registered keep working.
            work.append(BackgroundWork("webhook-registration", self.registration.run))
        if self.claims is not None:
            # Never unready: admissions take and judge claims themselves; a failing pass
            # only leaves released entries counting until the next one.
            work.append(BackgroundWork("claims", self.claims.run))
        return work

    def stop(self) -> None:
        """Once nothing runs any more (blocking): hand the Lease over now, not in
        lease_duration, and end the watch threads."""
        self.elector.release()
        if self.registration is not None:
            self.registration.on_stop()
        if self.watch is not None:
            self.watch.stop()

    async def follow(self) -> None:
        """Apply Policy and PolicyException objects as they change; write statuses."""
        assert self.watch is not None and self.policies is not None and self.statuses is not None
        watch, store = self.watch, self.watch.store
        watch.start()  # idempotent: a restart after a failure keeps the running informers
        # After a restart, apply what is there again, and rewrite every status.
        pending_writes, self._write_all = True, True
        watch.changed.set()
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
                if self.policies.policies() != before:
                    if self.reports is not None:
                        self.reports.trigger()
                    if self.quotas is not None:
                        self.quotas.trigger()
                self.read_once = True
                pending_writes = True
            if self._write_all and self.elector.leading:
                self._write_all = False
                self.statuses.forget()
                self.exception_statuses.forget()
                pending_writes = True
            if pending_writes and self.elector.leading:
                failed = await asyncio.to_thread(self.statuses.write, dict(self.policies.statuses))
                failed += await asyncio.to_thread(self.exception_statuses.write,
                                                  dict(self.exceptions.statuses))
                pending_writes = failed > 0

