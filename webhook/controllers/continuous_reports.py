"""The continuous audit: the leader judges what the cache holds, every ``interval`` seconds
(and soon after the policy set changes), with the same code as ``edgewarden audit`` and the
exceptions admissions honour, at the server's clock. It keeps the PolicyReports current and
exports ``edgewarden_existing_violations{policy,namespace,mode}``.

The judging runs in a worker thread: it is CPU work (milliseconds per hundred objects) that
must not hold the event loop, though it shares the interpreter with admissions, which is
why it runs on one replica and at an interval, not on every change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from webhook.admission.state import ServerState
from webhook.controllers.reports import Reconciled, ReportWriter
from webhook.controllers.shadow_reports import shadow_reports
from webhook.offline.manifests import Manifest
from webhook.offline.reports.policyreport import MAX_REPORT_BYTES, policy_reports
from webhook.offline.results import ScanReport
from webhook.offline.scan import audit_objects
from webhook.policy.model.exceptions import ExceptionRegistry

log = logging.getLogger("edgewarden.controllers")

RETRY_SECONDS = 2.0


@dataclass(frozen=True)
class ReportRun:
    objects: int
    reports: int
    reconciled: Reconciled
    seconds: float


def existing_violations(report: ScanReport) -> dict[tuple[str, str, str], int]:
    """Violations per (policy, namespace, mode); a namespace finding counts in its namespace."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for finding in report.findings:
        if not finding.outcome.is_violation:
            continue
        resource = finding.resource
        namespace = resource.name if resource.kind == "Namespace" else resource.namespace
        counts[(finding.policy, namespace, finding.mode.value)] += 1
    return dict(counts)


class ContinuousReports:
    def __init__(self, state: ServerState, exceptions: ExceptionRegistry, writer: ReportWriter,
                 *, interval: float, leading: Callable[[], bool],
                 clock: Callable[[], float] = time.time,
                 max_bytes: int = MAX_REPORT_BYTES) -> None:
        self.state = state
        self.exceptions = exceptions
        self.writer = writer
        self.interval = interval
        self.leading = leading
        self.clock = clock
        self.max_bytes = max_bytes
        self.last: ReportRun | None = None
        self.runs = 0
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def trigger(self) -> None:
        """Audit soon, if leading (the policy set changed); safe from any thread."""
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    def run_once(self) -> ReportRun | None:
        """Judge, write the reports, export the counts (blocking: call it in a thread)."""
        loaded = self.state.policies
        if loaded is None or not self.state.cluster.synced:
            return None
        started = time.monotonic()
        now = self.clock()
        objects = [Manifest(obj, None) for obj in self.state.cluster.snapshot()]
        report = audit_objects(objects, loaded.engine.policies,
                               exceptions=self.exceptions.current, now=now)
        documents = policy_reports(report, now, max_bytes=self.max_bytes)
        if loaded.shadow is not None:
            # The candidates judge the same objects; their differences are reported apart.
            candidates = audit_objects(objects, loaded.shadow.policies,
                                       exceptions=self.exceptions.current, now=now)
            documents += shadow_reports(report, candidates, now, max_bytes=self.max_bytes)
        self.state.metrics.set_existing_violations(existing_violations(report))
        reconciled = self.writer.reconcile(documents)
        run = ReportRun(len(report.objects), len(documents), reconciled,
                       time.monotonic() - started)
        log.info("audit: %d objects judged, %d reports (%d created, %d replaced, %d unchanged, "
                 "%d deleted) in %.2f s", run.objects, run.reports, reconciled.created,
                 reconciled.replaced, reconciled.unchanged, reconciled.deleted, run.seconds)
        self.last = run
        self.runs += 1
        return run

    async def run(self) -> None:
        """Audit while leading, every ``interval`` or when triggered; cancel to stop."""
        self._loop = asyncio.get_running_loop()
        was_leading = False
        while True:
            leading = self.leading()
            done: object = None
            if leading:
                try:
                    done = await asyncio.to_thread(self.run_once)
                except Exception:  # an audit bug must not take the server down
                    log.exception("audit: the run failed; trying again next interval")
                    done = "failed"
            elif was_leading:
                self.state.metrics.set_existing_violations({})  # another replica reports now
            was_leading = leading
            # Not leading, or nothing to judge yet (no policy set, cache not synced): look
            # again soon rather than a whole interval later.
            wait = self.interval if done is not None else RETRY_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()
