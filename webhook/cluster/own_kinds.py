"""The kinds edgewarden itself reads and writes (its own CRDs, the PolicyReport CRDs and
the built-in kinds its controllers use), as the one kind type every module names."""

from __future__ import annotations

from webhook.policy.load.schema import API_VERSION
from webhook.policy.model.kinds import KindRef

_GROUP, _VERSION = API_VERSION.split("/")
POLICY = KindRef(_GROUP, "Policy", "policies", (_VERSION,), namespaced=False)
POLICY_EXCEPTION = KindRef(_GROUP, "PolicyException", "policyexceptions", (_VERSION,))
POLICY_REPORT = KindRef("wgpolicyk8s.io", "PolicyReport", "policyreports", ("v1alpha2",))
CLUSTER_POLICY_REPORT = KindRef("wgpolicyk8s.io", "ClusterPolicyReport",
                                "clusterpolicyreports", ("v1alpha2",), namespaced=False)
EVENT = KindRef("events.k8s.io", "Event", "events", ("v1",))
LEASE = KindRef("coordination.k8s.io", "Lease", "leases", ("v1",))
