"""The decision engine: a pure function of (policies, request, cluster view) -> Decision.

(Being implemented — signature is final.)
"""

from __future__ import annotations

from webhook.cluster.view import ClusterView, ObjectCounter
from webhook.policy.decision import Decision
from webhook.policy.model import PolicySet
from webhook.policy.request import AdmissionRequest


class Engine:
    """Judges admissions against one loaded :class:`PolicySet`. Thread-safe, no I/O.

    ``force_audit`` turns every Enforce into Audit (the server's ``--dry-run``): nothing is
    denied and nothing patched, but every violation is still reported.
    """

    def __init__(self, policies: PolicySet, *, force_audit: bool = False) -> None:
        self.policies = policies
        self.force_audit = force_audit

    def counters(self) -> list[ObjectCounter]:
        """The limit counters the cluster view must index (one per limit policy)."""
        raise NotImplementedError

    def evaluate(self, request: AdmissionRequest, cluster: ClusterView) -> Decision:
        raise NotImplementedError
