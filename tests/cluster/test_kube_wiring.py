"""How the server builds the watch cache, and how it settles reservations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from webhook.cluster.kube import KubeCluster
from webhook.cluster.reservations import Reservations
from webhook.errors import ClusterStateError
from webhook.policy.decision import LimitClaim

from .conftest import TypeCounter, eventually, namespace, service
from .fake_apiserver import FakeApiServer

LB = TypeCounter("LoadBalancer")
MakeCluster = Callable[..., KubeCluster]


def lb_claim(name: str) -> LimitClaim:
    return LimitClaim("limit-loadbalancers", LB.key, "Service", "shop", name)


def write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": server}}],
                "users": [{"name": "tester", "user": {"token": "not-a-secret"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester"}}],
                "current-context": "fake",
            }
        )
    )
    return path


@pytest.fixture
def outside_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)


@pytest.mark.usefixtures("outside_a_cluster")
def test_without_a_service_account_or_kubeconfig_the_error_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))

    with pytest.raises(ClusterStateError) as error:
        KubeCluster.from_environment()

    assert "kubeconfig" in str(error.value)
    assert "--cluster-state" in str(error.value)


@pytest.mark.usefixtures("outside_a_cluster")
def test_from_environment_reads_the_kubeconfig(
    apiserver: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apiserver.create("namespaces", namespace("shop", environment="prod"))
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "config", apiserver.url)))

    cluster = KubeCluster.from_environment()
    cluster.start()
    try:
        assert cluster.wait_synced(timeout=10)
        assert cluster.get_namespace("shop") is not None
    finally:
        cluster.stop()


def test_the_watch_seeing_a_new_object_releases_its_reservation(
    apiserver: FakeApiServer, make_cluster: MakeCluster
) -> None:
    reservations = Reservations(ttl_seconds=600)
    cluster = make_cluster()
    cluster.attach_reservations(reservations)
    cluster.register_counters([LB])
    cluster.start()
    assert cluster.wait_synced(timeout=10)
    view = reservations.view(cluster)
    reservations.reserve([lb_claim("web")])
    assert view.counted_names("shop", LB) == {"web"}

    apiserver.create("services", service("shop", "web", "LoadBalancer"))

    eventually(lambda: reservations.reserved_names("shop", LB.key) == set(), what="release")
    assert view.counted_names("shop", LB) == {"web"}  # counted once, now by the watch


def test_an_unrelated_update_does_not_release_the_reservation_of_an_update(
    apiserver: FakeApiServer, make_cluster: MakeCluster
) -> None:
    apiserver.create("services", service("shop", "web", "ClusterIP"))
    reservations = Reservations(ttl_seconds=600)
    cluster = make_cluster(reservations=reservations)
    cluster.register_counters([LB])
    cluster.start()
    assert cluster.wait_synced(timeout=10)
    view = reservations.view(cluster)
    # The admission allowed turning web into a LoadBalancer; the API server has not stored it.
    reservations.reserve([lb_claim("web")])

    relabelled = service("shop", "web", "ClusterIP")
    relabelled["metadata"]["labels"] = {"team": "shop"}
    apiserver.update("services", relabelled)
    eventually(
        lambda: cluster.state()["Service"]["resource_version"] == str(apiserver.resource_version),
        what="the unrelated update applied",
    )
    assert view.counted_names("shop", LB) == {"web"}  # still held

    apiserver.update("services", service("shop", "web", "LoadBalancer"))
    eventually(lambda: reservations.reserved_names("shop", LB.key) == set(), what="release")
    assert view.counted_names("shop", LB) == {"web"}


def test_objects_present_at_a_relist_release_their_reservations(
    apiserver: FakeApiServer, make_cluster: MakeCluster
) -> None:
    reservations = Reservations(ttl_seconds=600)
    cluster = make_cluster(reservations=reservations)
    cluster.register_counters([LB])
    cluster.start()
    assert cluster.wait_synced(timeout=10)
    eventually(lambda: apiserver.watches("services"), what="a services watch")
    reservations.reserve([lb_claim("web")])

    with apiserver.atomic():  # created while the watch is expiring: only the relist shows it
        apiserver.create("services", service("shop", "web", "LoadBalancer"))
        apiserver.compact()
        apiserver.expire_watches()

    eventually(lambda: reservations.reserved_names("shop", LB.key) == set(), what="release")
    assert set(cluster.counted_names("shop", LB)) == {"web"}
