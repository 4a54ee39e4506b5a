"""Reservations against the watch: released when the object appears (named or not), dropped
once the cache is current past the moment it would have appeared. Time is an injected
clock; progress is the API double's events and bookmarks."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from tests.kubeapi import KubeApi
from tests.support import eventually, namespace, service
from tests.support.clock import FakeClock
from webhook.cluster.kube import KubeCluster
from webhook.cluster.reservations import Reservations
from webhook.policy.engine.evaluation import Engine
from webhook.policy.load.loader import load_policies
from webhook.policy.model.request import make_request

POLICY = Path(__file__).parents[2] / "policies" / "limit-loadbalancers-per-namespace.yaml"
GRACE = 10.0  # the default: a 5 s webhook timeout plus a 5 s margin
MakeCluster = Callable[..., KubeCluster]



class Admissions:
    """The admission path of the server (lock, evaluate, reserve), over the watch cache."""

    def __init__(self, reservations: Reservations, cluster: KubeCluster) -> None:
        self.engine = Engine(load_policies(POLICY))
        self.reservations = reservations
        self.view = reservations.view(cluster)
        cluster.register_counters(self.engine.counters())

    def create(self, name: str, uid: str, *, reserve: bool = True) -> bool:
        obj = service(name=name, namespace="shop", type="LoadBalancer")
        request = make_request("CREATE", obj, uid=uid)
        with self.reservations.lock("shop"):
            decision = self.engine.evaluate(request, self.view)
            if reserve and decision.allowed:
                self.reservations.reserve(decision.limit_claims, uid, name=name)
        return decision.allowed


def following(
    kube_api: KubeApi, make_cluster: MakeCluster, reservations: Reservations
) -> tuple[KubeCluster, Admissions]:
    if not kube_api.exists("namespaces", "shop"):
        kube_api.create(namespace(name="shop"))
    cluster = make_cluster(reservations=reservations)
    admissions = Admissions(reservations, cluster)
    cluster.start()
    assert cluster.wait_synced(timeout=10)
    eventually(lambda: kube_api.watches("services"), what="a services watch")
    return cluster, admissions


def bookmark(kube_api: KubeApi, cluster: KubeCluster) -> None:
    """The API server says the Service watch is current (and the cache applied it)."""
    rv = str(kube_api.bookmark("services"))
    eventually(lambda: cluster.state()["Service"]["resource_version"] == rv,
               what="the bookmark applied")


def test_a_generated_name_releases_the_reservation_of_a_create_without_a_name(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    clock = FakeClock()
    reservations = Reservations(grace_seconds=GRACE, clock=clock)
    _cluster, admissions = following(kube_api, make_cluster, reservations)
    assert admissions.create("", "uid-1")  # generateName: web-
    assert len(reservations) == 1

    # The API server stores it as web-x7k2p; the watch shows a counted object it did not know.
    kube_api.create(service(name="web-x7k2p", namespace="shop", type="LoadBalancer"))

    eventually(lambda: len(reservations) == 0, what="the unnamed reservation released")
    assert len(admissions.view.counted_names("shop", admissions.engine.counters()[0])) == 1


def test_a_place_is_freed_once_the_watch_is_current_past_the_deadline(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    clock = FakeClock()
    reservations = Reservations(grace_seconds=GRACE, clock=clock)
    cluster, admissions = following(kube_api, make_cluster, reservations)
    assert admissions.create("fake-1", "uid-1")
    assert admissions.create("fake-2", "uid-2")
    assert not admissions.create("real", "uid-3", reserve=False)  # both places held

    clock.now += GRACE - 1
    bookmark(kube_api, cluster)  # current, but fake-1 and fake-2 may still come
    assert not admissions.create("real", "uid-4", reserve=False)

    clock.now += 2
    bookmark(kube_api, cluster)  # current 11 s after: they would be here by now

    assert admissions.create("real", "uid-5", reserve=False)
    assert len(reservations) == 0


def test_a_named_object_that_appears_in_time_keeps_its_place_counted(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    clock = FakeClock()
    reservations = Reservations(grace_seconds=GRACE, clock=clock)
    cluster, admissions = following(kube_api, make_cluster, reservations)
    assert admissions.create("web", "uid-1")
    kube_api.create(service(name="web", namespace="shop", type="LoadBalancer"))
    eventually(lambda: len(reservations) == 0, what="released by the watch")

    clock.now += 60
    bookmark(kube_api, cluster)

    counted = admissions.view.counted_names("shop", admissions.engine.counters()[0])
    assert counted == {"web"}  # counted by the cache now, not by a reservation


ATTACKS = (0, 1, 30, 31, 60, 61)  # six fabricated CREATEs over 61 s, in pairs
SECONDS = 80


def squatted_seconds(
    kube_api: KubeApi, make_cluster: MakeCluster, reservations: Reservations,
    clock: FakeClock,
) -> list[int]:
    """Replay the attack second by second; the seconds in which a legitimate LoadBalancer
    CREATE would be denied. The cluster is busy: some Service event every 5 s."""
    cluster, admissions = following(kube_api, make_cluster, reservations)
    start = clock.now
    denied = []
    try:
        for second in range(SECONDS):
            clock.now = start + second
            if second % 5 == 0:
                bookmark(kube_api, cluster)
            if second in ATTACKS:
                admissions.create(f"squat-{second}", f"squat-{second}")
            if not admissions.create("legit", f"legit-{second}", reserve=False):
                denied.append(second)
    finally:
        cluster.stop()
    return denied


def longest_run(seconds: list[int]) -> int:
    longest = run = 0
    for index, second in enumerate(seconds):
        run = run + 1 if index and second == seconds[index - 1] + 1 else 1
        longest = max(longest, run)
    return longest


def test_six_fabricated_creates_no_longer_hold_both_places_for_long(
    kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    """The issue's attack: reviews sent straight to the webhook, never followed by an
    object. Before: every reservation lasted a fixed 30 s, and six reviews in pairs kept
    both places of the namespace taken for 79 of 80 s. Now each lasts until the watch is
    current past reservation + timeout + margin: at most ~GRACE seconds at a time."""
    clock = FakeClock()
    fixed_ttl = Reservations(grace_seconds=math.inf, max_age_seconds=30, clock=clock)
    before = squatted_seconds(kube_api, make_cluster, fixed_ttl, clock)

    clock = FakeClock()
    deadline = Reservations(grace_seconds=GRACE, clock=clock)
    after = squatted_seconds(kube_api, make_cluster, deadline, clock)

    print(f"legitimate creates denied: {len(before)} of {SECONDS} s with a fixed 30 s TTL "
          f"(longest {longest_run(before)} s), {len(after)} of {SECONDS} s now "
          f"(longest {longest_run(after)} s)")
    assert len(before) == 79 and longest_run(before) == 79
    assert longest_run(after) < GRACE
    assert len(after) <= 3 * GRACE  # one stretch per pair of fabricated reviews
