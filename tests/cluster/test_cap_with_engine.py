"""The shipped LoadBalancer cap, judged by the engine over the watch cache and reservations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.kubeapi import KubeApi
from tests.support import eventually, namespace, race, service
from webhook.cluster.kube import KubeCluster
from webhook.cluster.reservations import Reservations
from webhook.policy.engine.evaluation import Engine
from webhook.policy.load.loader import load_policies
from webhook.policy.model.request import make_request

POLICY = Path(__file__).parents[2] / "policies" / "limit-loadbalancers-per-namespace.yaml"


def test_fifty_concurrent_loadbalancer_creates_under_the_default_cap_allow_exactly_two_more(
    kube_api: KubeApi, make_cluster: Callable[..., KubeCluster]
) -> None:
    kube_api.create(namespace(name="shop"))
    engine = Engine(load_policies(POLICY))
    reservations = Reservations(grace_seconds=600)
    cluster = make_cluster(reservations=reservations)
    cluster.register_counters(engine.counters())
    cluster.start()
    assert cluster.wait_synced(timeout=10)
    view = reservations.view(cluster)
    requests = [
        make_request("CREATE", service(name=f"lb-{i}", namespace="shop", type="LoadBalancer"),
                     uid=f"uid-{i}")
        for i in range(50)
    ]
    allowed: list[str] = []

    def admit(i: int) -> None:
        request = requests[i]
        with reservations.lock(request.namespace):
            decision = engine.evaluate(request, view)
            if decision.allowed:
                reservations.reserve(decision.limit_claims, request.uid)
                allowed.append(request.name)

    race(admit, 50)

    assert len(allowed) == 2
    # The API server stores the two; the watch shows them and settles their reservations.
    for name in allowed:
        kube_api.create(service(name=name, namespace="shop", type="LoadBalancer"))
    eventually(lambda: len(reservations) == 0, what="reservations settled by the watch")
    late = make_request("CREATE", service(name="late", namespace="shop", type="LoadBalancer"))
    decision = engine.evaluate(late, view)
    assert not decision.allowed
    assert "2 of 2" in decision.deny_message()
