"""The watch cache lists in pages (limit/continue, as client-go's reflector does), starts a
LIST over when a continue token expires (410 Gone), and swaps a LIST in only whole."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from tests.kubeapi import KubeApi
from tests.support import eventually, namespace, service
from webhook.cluster.kube import KubeCluster

from .conftest import FAST, services_of_type

MakeCluster = Callable[..., KubeCluster]
PAGED = replace(FAST, page_size=2)
LB = services_of_type("LoadBalancer")


def seed(kube_api: KubeApi, count: int) -> None:
    kube_api.create(namespace(name="shop"))
    for index in range(count):
        kube_api.create(service(name=f"s{index}", namespace="shop",
                                type="LoadBalancer" if index % 2 else "ClusterIP"))


def services(cluster: KubeCluster) -> set[str]:
    return {o["metadata"]["name"] for o in cluster.snapshot() if o["kind"] == "Service"}


def test_a_list_is_taken_in_pages_and_the_watch_resumes_from_its_version(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    seed(kube_api, 7)
    cluster = make_cluster(PAGED)
    cluster.register_counters([LB])
    cluster.start()
    assert cluster.wait_synced(timeout=10)

    pages = kube_api.lists("services")
    assert [p.params.get("limit") for p in pages] == ["2"] * 4
    assert [bool(p.params.get("continue")) for p in pages] == [False, True, True, True]
    assert services(cluster) == {f"s{i}" for i in range(7)}
    assert set(cluster.counted_names("shop", LB)) == {"s1", "s3", "s5"}
    # The watch starts where the LIST ended: nothing between is missed or replayed.
    eventually(lambda: kube_api.watches("services"), what="the services watch")
    listed_at = cluster.state()["Service"]["resource_version"]
    assert kube_api.watches("services")[0].params["resourceVersion"] == listed_at
    kube_api.create(service(name="late", namespace="shop", type="LoadBalancer"))
    eventually(lambda: "late" in cluster.counted_names("shop", LB), what="late counted")


def test_an_expired_continue_token_starts_the_list_over(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    seed(kube_api, 5)
    kube_api.fail_continued_lists(1)  # 410 Expired on the second page
    cluster = make_cluster(PAGED)
    cluster.register_counters([LB])
    cluster.start()

    assert cluster.wait_synced(timeout=10)

    continued = [bool(p.params.get("continue")) for p in kube_api.lists("services")]
    # page 1, page 2 (410), then the whole LIST again from its first page
    assert continued == [False, True, False, True, True]
    assert cluster.state()["Service"]["list_restarts"] == 1
    assert cluster.state()["Service"]["errors"] == 0
    assert services(cluster) == {f"s{i}" for i in range(5)}
    assert set(cluster.counted_names("shop", LB)) == {"s1", "s3"}


def test_continue_tokens_that_keep_expiring_fall_back_to_the_backoff(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    seed(kube_api, 5)
    kube_api.fail_continued_lists(10)
    cluster = make_cluster(PAGED)
    cluster.start()

    assert cluster.wait_synced(timeout=10)
    state = cluster.state()["Service"]
    assert state["list_restarts"] == 10
    assert state["relists"] >= 2  # the informer's own 410 path took over after 4 tries
    assert services(cluster) == {f"s{i}" for i in range(5)}


def test_a_list_that_fails_midway_is_not_synced_and_is_taken_again(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    seed(kube_api, 5)
    kube_api.fail_continued_lists(2, code=500, reason="InternalError")
    cluster = make_cluster(PAGED)
    cluster.start()

    eventually(lambda: cluster.state()["Service"]["errors"] >= 1, what="a failed LIST")
    assert cluster.wait_synced(timeout=10)
    assert services(cluster) == {f"s{i}" for i in range(5)}


def test_a_relist_that_fails_midway_leaves_the_cache_as_it_was(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    seed(kube_api, 5)
    cluster = make_cluster(PAGED)
    cluster.register_counters([LB])
    cluster.start()
    assert cluster.wait_synced(timeout=10)
    eventually(lambda: kube_api.watches("services"), what="the services watch")
    lists = len(kube_api.lists("services"))
    kube_api.fail_continued_lists(1000, code=500, reason="InternalError")
    kube_api.delete("services", "s1", namespace="shop")
    kube_api.compact()
    kube_api.expire_watches()  # the watch ends with 410: LIST again, which fails midway

    eventually(lambda: len(kube_api.lists("services")) >= lists + 4,
               what="relists failing on their second page")

    # Never half a LIST: the five Services and their counts, as before the relist began.
    assert services(cluster) == {f"s{i}" for i in range(5)}
    assert set(cluster.counted_names("shop", LB)) == {"s1", "s3"}
    kube_api.clear_refusals()
    eventually(lambda: services(cluster) == {"s0", "s2", "s3", "s4"}, what="the relist")
    assert set(cluster.counted_names("shop", LB)) == {"s3"}
