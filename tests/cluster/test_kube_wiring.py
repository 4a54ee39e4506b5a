"""How the server builds the watch cache, and how it settles reservations."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.kubeapi import KubeApi
from tests.support import eventually, namespace, service
from webhook.cluster.kube import KubeCluster
from webhook.cluster.reservations import Reservations
from webhook.errors import ClusterStateError
from webhook.policy.model.decision import LimitClaim

from .conftest import services_of_type

LB = services_of_type("LoadBalancer")
MakeCluster = Callable[..., KubeCluster]


def lb_claim(name: str) -> LimitClaim:
    return LimitClaim("limit-loadbalancers", LB.key, "Service", "shop", name)


@pytest.mark.usefixtures("no_cluster_env")
def test_without_a_service_account_or_kubeconfig_the_error_says_what_to_do() -> None:
    with pytest.raises(ClusterStateError) as error:
        KubeCluster.from_environment()

    assert "kubeconfig" in str(error.value)
    assert "--cluster-state" in str(error.value)


@pytest.mark.usefixtures("kubeconfig_env")
def test_from_environment_reads_the_kubeconfig(kube_api: KubeApi) -> None:
    kube_api.create(namespace(name="shop", labels={"environment": "prod"}))

    cluster = KubeCluster.from_environment()
    cluster.start()
    try:
        assert cluster.wait_synced(timeout=10)
        assert cluster.get_namespace("shop") is not None
    finally:
        cluster.stop()


def test_the_watch_seeing_a_new_object_releases_its_reservation(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    reservations = Reservations(grace_seconds=600)
    cluster = make_cluster()
    cluster.attach_reservations(reservations)
    cluster.register_counters([LB])
    cluster.start()
    assert cluster.wait_synced(timeout=10)
    view = reservations.view(cluster)
    reservations.reserve([lb_claim("web")], "uid-web")
    assert view.counted_names("shop", LB) == {"web"}

    kube_api.create(service(name="web", namespace="shop", type="LoadBalancer"))

    eventually(lambda: reservations.reserved_names("shop", LB.key) == set(), what="release")
    assert view.counted_names("shop", LB) == {"web"}  # counted once, now by the watch


def test_an_unrelated_update_does_not_release_the_reservation_of_an_update(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    kube_api.create(service(name="web", namespace="shop", type="ClusterIP"))
    reservations = Reservations(grace_seconds=600)
    cluster = make_cluster(reservations=reservations)
    cluster.register_counters([LB])
    cluster.start()
    assert cluster.wait_synced(timeout=10)
    view = reservations.view(cluster)
    # The admission allowed turning web into a LoadBalancer; the API server has not stored it.
    reservations.reserve([lb_claim("web")], "uid-web")

    relabelled = service(name="web", namespace="shop", type="ClusterIP")
    relabelled["metadata"]["labels"] = {"team": "shop"}
    kube_api.update(relabelled)
    eventually(
        lambda: cluster.state()["Service"]["resource_version"] == str(kube_api.revision),
        what="the unrelated update applied",
    )
    assert view.counted_names("shop", LB) == {"web"}  # still held

    kube_api.update(service(name="web", namespace="shop", type="LoadBalancer"))
    eventually(lambda: reservations.reserved_names("shop", LB.key) == set(), what="release")
    assert view.counted_names("shop", LB) == {"web"}


def test_objects_present_at_a_relist_release_their_reservations(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    reservations = Reservations(grace_seconds=600)
    cluster = make_cluster(reservations=reservations)
    cluster.register_counters([LB])
    cluster.start()
    assert cluster.wait_synced(timeout=10)
    eventually(lambda: kube_api.watches("services"), what="a services watch")
    reservations.reserve([lb_claim("web")], "uid-web")

    with kube_api.atomic():  # created while the watch is expiring: only the relist shows it
        kube_api.create(service(name="web", namespace="shop", type="LoadBalancer"))
        kube_api.compact()
        kube_api.expire_watches()

    eventually(lambda: reservations.reserved_names("shop", LB.key) == set(), what="release")
    assert set(cluster.counted_names("shop", LB)) == {"web"}
