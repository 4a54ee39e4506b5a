"""The controllers' part of ``serve``'s settings: what runs beside the webhook when it
reads a real cluster (webhook/controllers/runner.py)."""

from __future__ import annotations

from dataclasses import dataclass

from webhook.registration.settings import RegistrationSettings


@dataclass(frozen=True)
class ControllerSettings:
    # Policy and PolicyException objects (CRDs) beside the files.
    cluster_objects: bool = True
    # The continuous reports (`--audit-interval`): seconds between runs (0: off).
    report_interval_seconds: float = 0.0
    # Where the leader-election Lease lives (None: the pod's own namespace).
    leader_namespace: str | None = None
    leader_lease: str = "edgewarden-leader"  # --leader-election-lease
    # --manage-quotas: the leader keeps a services.loadbalancers ResourceQuota equal to each
    # namespace's LoadBalancer cap (webhook/controllers/quotas.py).
    manage_quotas: bool = False
    quota_interval_seconds: float = 10.0
    # --register-webhooks: the leader keeps the webhook configurations in the cluster
    # (webhook/controllers/registration.py); None: they are installed by someone else.
    registration: RegistrationSettings | None = None
