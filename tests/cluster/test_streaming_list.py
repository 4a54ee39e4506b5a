"""The watch cache takes the current objects as a watch's initial events (sendInitialEvents,
the streaming list of KEP 3157), and lists in pages where the API server refuses that."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from tests.kubeapi import KubeApi
from tests.support import eventually, namespace, service
from webhook.cluster.kube import KubeCluster

from .conftest import FAST, services_of_type

MakeCluster = Callable[..., KubeCluster]
LB = services_of_type("LoadBalancer")
# Fewer per batch than there are objects, so one stream fills the store in several batches.
SMALL_BATCHES = replace(FAST, page_size=2)


def seed(kube_api: KubeApi, count: int) -> None:
    kube_api.create(namespace(name="shop"))
    for index in range(count):
        kube_api.create(service(name=f"s{index}", namespace="shop",
                                type="LoadBalancer" if index % 2 else "ClusterIP"))


def services(cluster: KubeCluster) -> set[str]:
    return {o["metadata"]["name"] for o in cluster.snapshot() if o["kind"] == "Service"}


def started(make_cluster: MakeCluster, **kwargs: object) -> KubeCluster:
    cluster = make_cluster(SMALL_BATCHES, **kwargs)
    cluster.register_counters([LB])
    cluster.start()
    assert cluster.wait_synced(timeout=10)
    return cluster


def test_the_objects_come_as_one_watchs_initial_events_and_the_watch_resumes_after_them(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    seed(kube_api, 7)
    cluster = started(make_cluster)

    assert services(cluster) == {f"s{i}" for i in range(7)}
    assert set(cluster.counted_names("shop", LB)) == {"s1", "s3", "s5"}  # type: ignore[arg-type]
    requests = kube_api.requests_for(None, "services")
    assert not [r for r in requests if r.verb == "list"], "no LIST at all"
    [streaming] = kube_api.lists("services")
    assert streaming.params["sendInitialEvents"] == "true"
    assert streaming.params["resourceVersionMatch"] == "NotOlderThan"
    assert "resourceVersion" not in streaming.params  # a consistent read: the newest state
    assert cluster.state()["Service"]["lists_by"] == "initial events"

    # The next watch starts at the resourceVersion the end-of-initial-events bookmark gave:
    # a change made now arrives as its event, with no second list.
    eventually(lambda: bool(kube_api.watches("services")), what="the watch after the stream")
    assert kube_api.watches("services")[0].resource_version == \
        cluster.state()["Service"]["resource_version"]
    kube_api.create(service(name="late", namespace="shop", type="LoadBalancer"))
    eventually(lambda: "late" in set(cluster.counted_names("shop", LB)),  # type: ignore[arg-type]
               what="the new Service counted")
    assert len(kube_api.lists("services")) == 1


def test_a_relist_after_410_streams_again_and_sees_a_delete_made_meanwhile(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    seed(kube_api, 4)
    cluster = started(make_cluster)
    kube_api.delete("services", "s1", namespace="shop")
    kube_api.compact()

    def relisted() -> bool:
        kube_api.expire_watches()  # again until seen: only open watches are expired
        return len(kube_api.lists("services")) >= 2

    eventually(relisted, what="a second streaming list")
    eventually(lambda: services(cluster) == {"s0", "s2", "s3"}, what="the delete seen")
    assert all(r.streaming_list for r in kube_api.lists("services"))
    assert cluster.synced


def test_a_server_that_refuses_initial_events_is_listed_in_pages_from_then_on(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    """kube-apiserver with the WatchList feature off (1.33 by default, before 1.32) answers
    sendInitialEvents with 422 Invalid: the informer lists in pages instead, and does not
    ask again at the next relist."""
    kube_api.streams_initial_events = False
    seed(kube_api, 5)
    cluster = started(make_cluster)

    assert services(cluster) == {f"s{i}" for i in range(5)}
    assert cluster.state()["Service"]["lists_by"] == "pages"
    requests = kube_api.lists("services")
    assert requests[0].streaming_list  # asked once, refused
    pages = requests[1:]
    assert len(pages) == 3 and all(r.verb == "list" for r in pages)  # 5 objects, 2 a page

    kube_api.compact()

    def relisted() -> bool:
        kube_api.expire_watches()
        return len(kube_api.lists("services")) > len(requests)

    eventually(relisted, what="a relist")
    eventually(lambda: cluster.synced, what="synced again")
    assert not any(r.streaming_list for r in kube_api.lists("services")[len(requests):])


def test_streaming_off_lists_in_pages_without_asking(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    seed(kube_api, 3)
    cluster = make_cluster(replace(SMALL_BATCHES, stream_lists=False))
    cluster.start()
    assert cluster.wait_synced(timeout=10)

    assert services(cluster) == {"s0", "s1", "s2"}
    assert [r.verb for r in kube_api.lists("services")] == ["list", "list"]


def test_a_kind_whose_stream_cannot_be_opened_is_not_synced_until_it_can(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    seed(kube_api, 2)
    kube_api.fail("watch", "services")  # a 500: not a refusal of the options
    cluster = make_cluster(SMALL_BATCHES)
    cluster.start()
    eventually(lambda: cluster.state()["Service"]["errors"] >= 2, what="retries")
    assert not cluster.synced
    assert cluster.state()["Service"]["lists_by"] == "initial events"  # still asks so
    assert not [r for r in kube_api.requests_for("list", "services")]

    kube_api.clear_refusals()

    assert cluster.wait_synced(timeout=10)
    assert services(cluster) == {"s0", "s1"}
