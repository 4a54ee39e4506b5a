"""The watch cache against a local server that speaks list/watch like the API server."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

from tests.kubeapi import KubeApi
from tests.support import api_client, eventually, ingress, namespace, service, write_kubeconfig
from webhook.cluster.backoff import backoff_delay
from webhook.cluster.kube import KubeCluster
from webhook.cluster.kube_informer import InformerSettings
from webhook.policy.model.ports import ClusterView

from .conftest import FAST, ingresses_of_class, services_of_type

LB = services_of_type("LoadBalancer")

MakeCluster = Callable[..., KubeCluster]


def started(make_cluster: MakeCluster, *counters: object, **kwargs: object) -> KubeCluster:
    cluster = make_cluster(**kwargs)
    cluster.register_counters(counters or [LB])  # type: ignore[arg-type]
    cluster.start()
    assert cluster.wait_synced(timeout=10)
    return cluster


def names(cluster: ClusterView, ns: str, counter: object = LB) -> set[str]:
    return set(cluster.counted_names(ns, counter))  # type: ignore[arg-type]


def test_cache_is_synced_after_the_first_list_of_every_kind(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    kube_api.create(namespace(name="payments", labels={"environment": "production"}))
    kube_api.create(service(name="api", namespace="payments", type="LoadBalancer"))
    kube_api.create(service(name="db", namespace="payments"))
    kube_api.create(ingress(name="web", namespace="payments"))
    cluster = make_cluster()
    cluster.register_counters([LB])
    assert not cluster.synced

    cluster.start()

    assert cluster.wait_synced(timeout=10)
    assert cluster.synced
    ns = cluster.get_namespace("payments")
    assert ns is not None and ns["metadata"]["labels"] == {"environment": "production"}
    assert cluster.get_namespace("nowhere") is None
    assert names(cluster, "payments") == {"api"}
    state = cluster.state()
    assert {k: v["synced"] for k, v in state.items()} == {
        "Namespace": True,
        "Service": True,
        "Ingress": True,
    }
    assert {k: v["objects"] for k, v in state.items()} == {
        "Namespace": 1,
        "Service": 2,
        "Ingress": 1,
    }


def test_cache_is_not_synced_while_one_kind_cannot_be_listed(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    kube_api.fail("list", "ingresses")
    cluster = make_cluster()
    cluster.start()
    eventually(lambda: cluster.state()["Ingress"]["errors"] >= 2, what="ingress list retries")
    assert cluster.state()["Service"]["synced"]
    assert not cluster.synced
    assert not cluster.wait_synced(timeout=0.05)

    kube_api.clear_refusals()

    assert cluster.wait_synced(timeout=10)


def test_stored_objects_keep_metadata_and_spec_without_managed_fields(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    stored = service(name="api", namespace="shop", type="LoadBalancer")
    stored["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Apply"}]
    stored["status"] = {"loadBalancer": {}}
    kube_api.create(stored)
    seen: list[dict[str, object]] = []

    class Recorder:
        key, kind = "recorder", "Service"

        def counts(self, obj: dict[str, object]) -> bool:
            seen.append(obj)
            return True

    started(make_cluster, Recorder())

    assert seen, "the counter judged the listed Service"
    obj = seen[-1]
    assert obj["kind"] == "Service" and obj["apiVersion"] == "v1"
    assert "managedFields" not in obj["metadata"]  # type: ignore[operator]
    assert "status" not in obj
    assert obj["spec"]["type"] == "LoadBalancer"  # type: ignore[index]


def test_added_modified_and_deleted_services_update_the_counted_names(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    cluster = started(make_cluster)

    kube_api.create(service(name="a", namespace="shop", type="LoadBalancer"))
    kube_api.create(service(name="b", namespace="shop", type="LoadBalancer"))
    kube_api.create(service(name="c", namespace="other", type="LoadBalancer"))
    eventually(lambda: names(cluster, "shop") == {"a", "b"}, what="two LBs in shop")
    assert names(cluster, "other") == {"c"}

    kube_api.delete("services", "a", namespace="shop")
    eventually(lambda: names(cluster, "shop") == {"b"}, what="a deleted")
    assert cluster.state()["Service"]["objects"] == 2


def test_service_switching_to_loadbalancer_and_back_enters_and_leaves_the_count(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    kube_api.create(service(name="web", namespace="shop"))
    cluster = started(make_cluster)
    assert names(cluster, "shop") == set()

    kube_api.update(service(name="web", namespace="shop", type="LoadBalancer"))
    eventually(lambda: names(cluster, "shop") == {"web"}, what="web counted")

    kube_api.update(service(name="web", namespace="shop", type="ClusterIP"))
    eventually(lambda: names(cluster, "shop") == set(), what="web no longer counted")


def test_ingresses_and_namespaces_follow_the_watch(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    nginx = ingresses_of_class("nginx")
    cluster = started(make_cluster, LB, nginx)

    kube_api.create(namespace(name="shop", labels={"environment": "prod"}))
    kube_api.create(ingress(name="web", namespace="shop", class_name="nginx"))
    kube_api.create(ingress(name="admin", namespace="shop", class_name="traefik"))
    eventually(lambda: names(cluster, "shop", nginx) == {"web"}, what="nginx ingress counted")
    eventually(lambda: cluster.get_namespace("shop") is not None, what="namespace seen")

    kube_api.update(namespace(name="shop", labels={"environment": "dev"}))
    eventually(
        lambda: (cluster.get_namespace("shop") or {})["metadata"]["labels"]["environment"] == "dev",
        what="namespace labels updated",
    )
    kube_api.delete("namespaces", "shop")
    eventually(lambda: cluster.get_namespace("shop") is None, what="namespace deleted")


def test_watch_error_410_relists_and_sees_a_delete_made_while_disconnected(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    kube_api.create(service(name="a", namespace="shop", type="LoadBalancer"))
    kube_api.create(service(name="b", namespace="shop", type="LoadBalancer"))
    cluster = started(make_cluster)
    eventually(lambda: kube_api.watches("services"), what="a services watch")
    assert names(cluster, "shop") == {"a", "b"}

    # The delete never reaches the open watch: history is compacted and the watch expires.
    with kube_api.atomic():
        kube_api.delete("services", "a", namespace="shop")
        kube_api.create(service(name="c", namespace="shop", type="LoadBalancer"))
        kube_api.compact()
        kube_api.expire_watches()

    eventually(lambda: names(cluster, "shop") == {"b", "c"}, what="state after relist")
    assert cluster.state()["Service"]["relists"] >= 1
    assert len(kube_api.lists("services")) >= 2
    assert cluster.synced


def test_http_410_on_reconnect_relists(kube_api: KubeApi, make_cluster: MakeCluster) -> None:
    kube_api.create(service(name="a", namespace="shop", type="LoadBalancer"))
    cluster = started(make_cluster)
    eventually(lambda: kube_api.watches("services"), what="a services watch")
    kube_api.gone_as_http = True

    with kube_api.atomic():
        kube_api.update(service(name="a", namespace="shop", type="ClusterIP"))
        kube_api.compact()
        kube_api.drop_watches()

    eventually(lambda: names(cluster, "shop") == set(), what="a no longer counted")
    assert cluster.state()["Service"]["relists"] >= 1


def test_dropped_connection_reconnects_from_the_last_resource_version(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    cluster = started(make_cluster)
    kube_api.create(service(name="a", namespace="shop", type="LoadBalancer"))
    eventually(lambda: names(cluster, "shop") == {"a"}, what="a counted")
    last_seen = cluster.state()["Service"]["resource_version"]
    watches_before = len(kube_api.watches("services"))

    kube_api.drop_watches()
    eventually(
        lambda: len(kube_api.watches("services")) > watches_before, what="a new services watch"
    )
    kube_api.create(service(name="b", namespace="shop", type="LoadBalancer"))

    eventually(lambda: names(cluster, "shop") == {"a", "b"}, what="b seen after reconnect")
    assert kube_api.watches("services")[watches_before].resource_version == last_seen
    assert len(kube_api.lists("services")) == 1  # resumed, not relisted
    assert cluster.state()["Service"]["errors"] >= 1


def test_bookmarks_advance_the_resource_version_used_to_resume(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    cluster = started(make_cluster)
    eventually(lambda: kube_api.watches("services"), what="a services watch")
    assert kube_api.watches("services")[0].params.get("allowWatchBookmarks") == "true"

    bookmark_rv = str(kube_api.bookmark("services"))
    eventually(
        lambda: cluster.state()["Service"]["resource_version"] == bookmark_rv,
        what="resourceVersion from the bookmark",
    )
    watches_before = len(kube_api.watches("services"))
    kube_api.drop_watches()

    eventually(lambda: len(kube_api.watches("services")) > watches_before, what="a re-watch")
    assert kube_api.watches("services")[watches_before].resource_version == bookmark_rv
    assert cluster.state()["Service"]["objects"] == 0  # a bookmark is not an object


def test_a_watch_error_other_than_410_resumes_without_relisting(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    cluster = started(make_cluster)
    eventually(lambda: kube_api.watches("services"), what="a services watch")

    kube_api.expire_watches(code=500, reason="InternalError")
    kube_api.create(service(name="a", namespace="shop", type="LoadBalancer"))

    eventually(lambda: names(cluster, "shop") == {"a"}, what="a seen after the error")
    assert cluster.state()["Service"]["errors"] >= 1
    assert cluster.state()["Service"]["relists"] == 0
    assert len(kube_api.lists("services")) == 1


def test_a_watch_the_server_ends_at_its_timeout_is_resumed_without_relisting(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    short = InformerSettings(**{**FAST.__dict__, "watch_timeout_seconds": 1})
    cluster = started(make_cluster, settings=short)
    eventually(lambda: kube_api.watches("services"), what="a services watch")
    assert kube_api.watches("services")[0].params["timeoutSeconds"] == "1"

    eventually(lambda: len(kube_api.watches("services")) >= 2, what="a second watch")
    kube_api.create(service(name="a", namespace="shop", type="LoadBalancer"))

    eventually(lambda: names(cluster, "shop") == {"a"}, what="a seen by a later watch")
    state = cluster.state()["Service"]
    assert state["errors"] == 0 and state["relists"] == 0
    assert len(kube_api.lists("services")) == 1


def test_backoff_grows_to_its_ceiling_with_jitter() -> None:
    delays = [backoff_delay(n, 0.5, 30.0) for n in range(1, 12)]

    assert 0.25 <= delays[0] <= 0.5
    assert 0.5 <= delays[1] <= 1.0
    assert all(15.0 <= d <= 30.0 for d in delays[7:])


def test_paged_list_reads_every_page(kube_api: KubeApi, make_cluster: MakeCluster) -> None:
    for i in range(7):
        kube_api.create(service(name=f"lb{i}", namespace="shop", type="LoadBalancer"))
    paged = InformerSettings(**{**FAST.__dict__, "page_size": 3})
    cluster = started(make_cluster, settings=paged)

    assert names(cluster, "shop") == {f"lb{i}" for i in range(7)}
    assert len(kube_api.lists("services")) == 3


def test_reregistered_counters_rebuild_the_indexes_from_the_cache(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    kube_api.create(service(name="lb", namespace="shop", type="LoadBalancer"))
    kube_api.create(service(name="np", namespace="shop", type="NodePort"))
    cluster = started(make_cluster)
    node_ports = services_of_type("NodePort")

    cluster.register_counters([node_ports])  # a policy reload

    assert names(cluster, "shop", node_ports) == {"np"}
    kube_api.create(service(name="np2", namespace="shop", type="NodePort"))
    eventually(lambda: names(cluster, "shop", node_ports) == {"np", "np2"}, what="np2 indexed")


def test_an_unregistered_counter_is_answered_from_the_cache(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    kube_api.create(service(name="np", namespace="shop", type="NodePort"))
    cluster = started(make_cluster)

    assert names(cluster, "shop", services_of_type("NodePort")) == {"np"}
    kube_api.create(service(name="np2", namespace="shop", type="NodePort"))
    eventually(
        lambda: names(cluster, "shop", services_of_type("NodePort")) == {"np", "np2"},
        what="the on-the-fly counter kept current",
    )


def test_a_counter_that_raises_does_not_count_and_does_not_stop_the_watch(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    class Broken:
        key, kind = "broken", "Service"

        def counts(self, obj: object) -> bool:
            raise ValueError("no such field")

    cluster = started(make_cluster, LB, Broken())
    kube_api.create(service(name="a", namespace="shop", type="LoadBalancer"))

    eventually(lambda: names(cluster, "shop") == {"a"}, what="a counted by LB")
    assert names(cluster, "shop", Broken()) == set()


def test_stop_ends_the_watch_threads_without_waiting_for_the_watch_timeout(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    slow = InformerSettings(**{**FAST.__dict__, "watch_timeout_seconds": 300})
    cluster = started(make_cluster, settings=slow)
    eventually(lambda: len(kube_api.watches("ingresses")) == 1, what="watches open")
    threads = list(cluster._threads)

    cluster.stop(timeout=10)

    assert not any(t.is_alive() for t in threads)


def test_an_unreachable_api_server_is_retried_and_never_crashes(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server=f"https://127.0.0.1:{port}")
    cluster = KubeCluster(api_client(kubeconfig), settings=FAST)
    cluster.start()
    try:
        eventually(lambda: cluster.state()["Service"]["errors"] >= 2, what="retries")
        assert not cluster.synced
        assert cluster.get_namespace("x") is None
        assert names(cluster, "shop") == set()
    finally:
        cluster.stop()
    assert not any(t.is_alive() for t in cluster._threads)
