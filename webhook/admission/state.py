"""Everything a running server shares, built once and handed to the app (no globals).

The policy set is the one thing that changes while serving (:class:`PolicySlot`): a reload
builds new engines and swaps them in one assignment, so a request in flight finishes on the
set it started with and the next one sees the new set. The rest is frozen when built.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from webhook.admission.decisionlog import DecisionLog
from webhook.admission.loaded import EvaluationBudget, LoadedPolicies
from webhook.admission.metrics import Metrics
from webhook.admission.readiness import Readiness
from webhook.admission.refusals import RefusalLog
from webhook.admission.settings import DEFAULT_MAX_BODY_BYTES
from webhook.cluster.backend import ClusterBackend
from webhook.policy.load.reads import fields_read
from webhook.policy.model.decision import KeyClaim, LimitClaim
from webhook.policy.model.exception_rules import ExceptionRules
from webhook.policy.model.exceptions import NO_EXCEPTIONS
from webhook.policy.model.kinds import merge
from webhook.policy.model.ports import ClusterView, ExceptionView

if TYPE_CHECKING:
    from webhook.admission.claiming import ClaimGate

log = logging.getLogger("edgewarden.server")


class ReservationBook(Protocol):
    """webhook.cluster.reservations.Reservations, as the server uses it."""

    def view(self, base: ClusterView) -> ClusterView: ...

    def lock(self, namespace: str) -> AbstractContextManager[Any]: ...

    def reserve(self, claims: Iterable[LimitClaim], uid: str, *, name: str = "",
                keys: Iterable[KeyClaim] = ()) -> Any: ...


class Certificate(Protocol):
    """webhook.certs.tls.ServingCertificate, as readiness and metrics use it."""

    @property
    def not_after(self) -> datetime.datetime: ...


@dataclass(frozen=True, slots=True)
class ReloadRefusal:
    reason: str
    message: str
    at: float  # Unix time


@dataclass(slots=True)
class PolicySlot:
    """The one thing that changes while serving: the policy set in force, swapped whole by
    a reload (one assignment, so a request in flight finishes on the set it started with),
    and the latest reload when it was refused."""

    current: LoadedPolicies | None = None
    last_refusal: ReloadRefusal | None = None


@dataclass(frozen=True, slots=True)
class ServerState:
    """What the handlers are given: fixed when built, but for the policy slot."""

    cluster: ClusterBackend
    metrics: Metrics
    decision_log: DecisionLog
    reservations: ReservationBook | None = None
    dry_run: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    certificate: Certificate | None = None
    # The PolicyExceptions admissions honour (files and cluster objects; see controllers).
    exceptions: ExceptionView = NO_EXCEPTIONS
    # The clock a review is judged at (PolicyException expiry); tests inject their own.
    clock: Callable[[], float] = time.time
    slot: PolicySlot = field(default_factory=PolicySlot)
    view: ClusterView = field(init=False)
    # What else /readyz asks (the supervised tasks, the cluster objects' watch): wired by
    # webhook/serve before serving starts.
    readiness: Readiness = field(default_factory=Readiness)
    # --client-ca: /validate and /mutate answer only callers with a verified certificate.
    require_client_certificate: bool = False
    refusals: RefusalLog | None = None  # counts and logs (rate-limited) refused callers
    evaluation: EvaluationBudget = field(default_factory=EvaluationBudget)
    # Where and how long PolicyExceptions may be honoured (serve --enable-exceptions...): the
    # approval webhook warns when a new exception would be ignored.
    exception_rules: ExceptionRules = field(default_factory=ExceptionRules)
    # Claims at the API server for limits and unique keys (webhook/admission/claiming.py);
    # None: the in-process reservations alone (no API server: --cluster-state, --dev).
    claims: ClaimGate | None = None

    def __post_init__(self) -> None:
        view = (self.cluster if self.reservations is None
                else self.reservations.view(self.cluster))
        object.__setattr__(self, "view", view)  # derived once, as the rest

    @property
    def policies(self) -> LoadedPolicies | None:
        """The policy set in force (None until the first one is installed)."""
        return self.slot.current

    @property
    def last_refusal(self) -> ReloadRefusal | None:
        return self.slot.last_refusal

    def install(self, loaded: LoadedPolicies) -> None:
        """Swap in a built policy set (already vetted) and tell the cluster what to count."""
        engines = loaded.engines()  # the candidates count and read the cluster too
        # What the policies read of existing objects, first: the cache cuts them to it.
        self.cluster.keep_fields(fields_read(p for e in engines for p in e.policies.policies))
        self.cluster.watch_kinds(merge(ref for e in engines for ref in e.policies.kinds()))
        self.cluster.register_counters([c for e in engines for c in e.counters()])
        self.cluster.register_key_indexes([i for e in engines for i in e.key_indexes()])
        self.slot.current = loaded
        self.slot.last_refusal = None
        self.metrics.policies_loaded.set(len(loaded.names))
        self.metrics.policy_reload_refused.set(0)
        log.info("serving %d policies: %s", len(loaded.names), ", ".join(sorted(loaded.names)))
        if loaded.shadow is not None:
            self.metrics.shadow_policies_loaded.set(len(loaded.shadow.names))
            log.info("judging %d policies in shadow: %s", len(loaded.shadow.names),
                     ", ".join(sorted(loaded.shadow.names)))
        else:
            self.metrics.shadow_policies_loaded.set(0)

    def refused(self, reason: str, message: str) -> None:
        """A reload was refused: the serving set stays; say so in metrics and /readyz."""
        self.slot.last_refusal = ReloadRefusal(reason, message, time.time())
        self.metrics.policy_load_errors.inc()
        self.metrics.policy_reloads_refused.labels(reason).inc()
        self.metrics.policy_reload_refused.set(1)

    def policy_status(self) -> dict[str, Any]:
        """What /readyz tells an operator about the policies, beside ready or not."""
        status: dict[str, Any] = {
            "serving": sorted(self.policies.names) if self.policies is not None else [],
        }
        if self.policies is not None and self.policies.shadow is not None:
            status["shadow"] = sorted(self.policies.shadow.names)  # judged, never answering
        if self.last_refusal is not None:
            refusal = self.last_refusal
            status["lastReload"] = {
                "result": "refused",
                "reason": refusal.reason,
                "message": refusal.message,
                "time": datetime.datetime.fromtimestamp(refusal.at, datetime.UTC).isoformat(),
            }
        return status

    def details(self) -> dict[str, Any]:
        """The readiness details, each read now."""
        return self.readiness.details()

    def not_ready(self) -> list[str]:
        """Why the server should not receive admissions yet (empty when ready)."""
        reasons: list[str] = []
        if self.policies is None:
            reasons.append("no policy set loaded")
        if not self.cluster.synced:
            reasons.append("cluster cache not synced yet")
        reasons.extend(stale_cache_reasons(self.cluster.state()))
        expiry = certificate_expiry(self.certificate)
        if expiry is not None and expiry <= time.time():
            reasons.append("serving certificate has expired")
        reasons.extend(self.readiness.reasons())
        return reasons


def stale_cache_reasons(cache_state: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One reason per kind whose cache has seen no event, bookmark or list for too long:
    a cache that silently stopped following the cluster must not look ready."""
    reasons = []
    for kind, fields in cache_state.items():
        if fields.get("stale"):
            age = fields.get("last_event_age")
            since = f"{age:.0f} s ago" if isinstance(age, int | float) else "never"
            reasons.append(f"cluster cache of {kind} is stale: last event, bookmark or "
                           f"list {since}")
    return reasons


def certificate_expiry(certificate: Certificate | None) -> float | None:
    """When ``certificate`` expires, as a Unix timestamp (None: no certificate)."""
    if certificate is None:
        return None
    return certificate.not_after.timestamp()

