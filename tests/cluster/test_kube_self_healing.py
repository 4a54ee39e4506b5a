"""The watch cache heals itself: repeated drops, silent stalls, and saying how old it is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from tests.kubeapi import KubeApi
from tests.support import eventually, service
from webhook.cluster.kube import KubeCluster
from webhook.cluster.kube_informer import InformerSettings

from .conftest import FAST, services_of_type

LB = services_of_type("LoadBalancer")
MakeCluster = Callable[..., KubeCluster]


def started(make_cluster: MakeCluster, settings: InformerSettings) -> KubeCluster:
    cluster = make_cluster(settings=settings)
    cluster.register_counters([LB])
    cluster.start()
    assert cluster.wait_synced(timeout=10)
    return cluster


def lbs(cluster: KubeCluster, namespace: str = "shop") -> set[str]:
    return set(cluster.counted_names(namespace, LB))


def test_the_backoff_starts_over_after_each_established_watch(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    """Before: the failure count only reset when a watch ended cleanly, so each drop of a
    working watch waited twice as long as the one before (0.17 s, then 23 s by the 8th)."""
    settings = replace(FAST, backoff_initial=0.05, backoff_max=60.0)
    cluster = started(make_cluster, settings)
    waited: list[float] = []

    for drop in range(8):
        watches = len(kube_api.watches("services"))
        eventually(lambda: kube_api.watches("services"), what="an open services watch")
        kube_api.drop_watches()
        eventually(lambda: len(kube_api.watches("services")) > watches,  # noqa: B023
                   timeout=30,
                   what=f"a new watch after drop {drop + 1}")
        kube_api.create(service(name=f"lb-{drop}", namespace="shop", type="LoadBalancer"))
        eventually(lambda: f"lb-{drop}" in lbs(cluster), what=f"lb-{drop} seen")  # noqa: B023
        waited.append(cluster.state()["Service"]["retry_delay"])

    # Every reconnect waited the first step of the backoff, none a later one.
    assert all(0 < delay <= settings.backoff_initial for delay in waited), waited
    assert cluster.state()["Service"]["errors"] >= 8
    assert cluster.state()["Service"]["relists"] == 0  # each resumed from its version


def test_a_silently_stalled_watch_is_cut_and_listed_again(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    """Before: a watch that stayed open but delivered nothing kept the cache stale until
    the read timeout (270 s); now no event or bookmark within stall_seconds means LIST."""
    settings = replace(FAST, watch_timeout_seconds=300, stall_seconds=0.5)
    cluster = started(make_cluster, settings)
    eventually(lambda: kube_api.watches("services"), what="an open services watch")

    with kube_api.stalled_watches():
        kube_api.create(service(name="web", namespace="shop", type="LoadBalancer"))
        # The watch never delivers it while stalled; only a new LIST can show it.
        eventually(lambda: lbs(cluster) == {"web"}, what="web seen through a relist")
        state = cluster.state()["Service"]

    assert state["stalls"] >= 1
    assert len(kube_api.lists("services")) >= 2
    assert kube_api.watches("services")[0].params["allowWatchBookmarks"] == "true"


def test_bookmarks_keep_a_quiet_watch_from_counting_as_stalled(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    settings = replace(FAST, watch_timeout_seconds=300, stall_seconds=1.0)
    cluster = started(make_cluster, settings)
    eventually(lambda: kube_api.watches("services"), what="an open services watch")
    lists = len(kube_api.lists("services"))

    # Bookmarks only, well within the stall limit of each other, for two limits' worth.
    for _ in range(7):
        rv = str(kube_api.bookmark("services"))
        eventually(lambda: cluster.state()["Service"]["resource_version"] == rv,  # noqa: B023
                   what="the bookmark applied")
        age = cluster.state()["Service"]["last_event_age"]
        assert age is not None and age < settings.stall_seconds
        eventually(lambda: (cluster.state()["Service"]["last_event_age"] or 0) >= 0.3,
                   what="a while without news")

    assert cluster.state()["Service"]["stalls"] == 0
    assert len(kube_api.lists("services")) == lists


def test_a_cache_without_news_for_too_long_says_it_is_stale(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    # Stall detection out of the way: only the age bound is under test.
    settings = replace(FAST, watch_timeout_seconds=300, stall_seconds=600,
                       stale_after_seconds=2.0)
    cluster = started(make_cluster, settings)
    eventually(lambda: kube_api.watches("services"), what="an open services watch")

    eventually(lambda: cluster.state()["Service"]["stale"], what="the Service cache stale")
    assert cluster.state()["Service"]["last_event_age"] > 2.0
    # Not answered from while stale: the engine fails the policies that read it.
    assert not cluster.synced

    kube_api.bookmark("services")

    eventually(lambda: not cluster.state()["Service"]["stale"], what="fresh after a bookmark")
    plurals = {"Namespace": "namespaces", "Service": "services", "Ingress": "ingresses"}
    assert set(cluster.state()) <= set(plurals), cluster.state().keys()
    for kind in cluster.state():
        kube_api.bookmark(plurals[kind])
    eventually(lambda: cluster.synced, what="every kind fresh: answered from again")


def test_a_quiet_watch_stays_fresh_through_its_timeout(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    """A watch the server ends at its timeout proves the connection was alive: with the
    timeout under the staleness bound, a quiet healthy cache never turns stale."""
    settings = replace(FAST, watch_timeout_seconds=1, stall_seconds=600,
                       stale_after_seconds=2.5)
    cluster = started(make_cluster, settings)
    ended = kube_api.watches("services")
    eventually(lambda: len(kube_api.watches("services")) >= len(ended) + 3,
               timeout=20, what="three watches ended by their timeout")
    assert not cluster.state()["Service"]["stale"]
    assert cluster.synced
