"""Issue 19, done when: with 3 replicas behind one URL and ``--manage-quotas``, 200
concurrent LoadBalancer CREATEs over 5 namespaces leave exactly each namespace's cap.

The caps differ per namespace (the ``edgewarden.dev/max-loadbalancers`` annotation), so a
namespace that got another's count would show. The race waits until the leading replica's
ResourceQuotas are enforced (the quota controller filled ``status.hard``): before that the
API server counts nothing and each replica's own count is all there is. What happens
without ``--manage-quotas`` is measured by benchmarks/apiserver.py (``--overshoot``), not
asserted: it depends on timing.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable

from tests.kube.controlplane import ControlPlane

from .fixtures import (
    LB_CAP_ANNOTATION,
    ReplicaSet,
    count_load_balancers,
    create_concurrently,
    load_balancer,
)

CAPS = (1, 2, 3, 4, 5)
CREATES = 200
WEBHOOK_CAP_MESSAGE = "already has as many LoadBalancer Services as its cap allows"
QUOTA_MESSAGE = "exceeded quota: edgewarden-loadbalancers"


def test_200_concurrent_creates_over_3_replicas_leave_exactly_each_namespaces_cap(
    replica_set: Callable[..., ReplicaSet], plane: ControlPlane
) -> None:
    replicas = replica_set(count=3, serve_args=("--manage-quotas",))
    caps = {replicas.namespace(annotations={LB_CAP_ANNOTATION: str(cap)}): cap for cap in CAPS}
    replicas.wait_for_quotas(caps)
    leader = replicas.leader()
    assert leader is not None, "a replica holds the leader Lease"

    namespaces = list(caps)
    creates = [(namespaces[i % len(namespaces)], load_balancer(f"lb-{uuid.uuid4().hex[:8]}"))
               for i in range(CREATES)]
    before = replicas.admissions()
    outcomes = create_concurrently(plane, creates)
    answered = [after - earlier for after, earlier in zip(replicas.admissions(), before,
                                                          strict=True)]

    assert count_load_balancers(plane, namespaces) == caps
    created = Counter(o.namespace for o in outcomes if o.created)
    assert dict(created) == caps, "each namespace's creates that succeeded are its cap"
    refusals = [o for o in outcomes if not o.created]
    assert len(refusals) == CREATES - sum(CAPS)
    by_webhook = [o for o in refusals if WEBHOOK_CAP_MESSAGE in o.message]
    by_quota = [o for o in refusals if QUOTA_MESSAGE in o.message]
    others = [o for o in refusals if o not in by_webhook and o not in by_quota]
    assert not others, f"refused for another reason: {others[:3]}"
    assert all(o.status == 403 for o in refusals)
    # The race went through every replica (the proxy spreads the API server's connections).
    assert all(count > 0 for count in answered), answered
    print(f"\n{CREATES} concurrent LoadBalancer creates over {len(replicas.replicas)} replicas "
          f"(reviews answered per replica: {answered}; leader #{leader.index}): "
          f"{sum(CAPS)} created = the caps {list(CAPS)}, {len(by_webhook)} refused by "
          f"edgewarden's count, {len(by_quota)} by the API server's quota")
