"""Reservations: places under a limit held between an allowed admission and the watch."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Set
from typing import Any

from tests.support import race
from tests.support.clock import FakeClock
from webhook.cluster.reservations import Reservations
from webhook.policy.model.decision import LimitClaim
from webhook.policy.model.ports import ObjectCounter

from .conftest import services_of_type

LB = services_of_type("LoadBalancer")
POLICY = "limit-loadbalancers-per-namespace"



class StaticCluster:
    """A base view with fixed counted names per namespace."""

    def __init__(self, counted: dict[str, set[str]] | None = None) -> None:
        self.counted = counted or {}
        self.namespaces = {"shop": {"metadata": {"name": "shop", "labels": {"env": "prod"}}}}

    def get_namespace(self, name: str) -> Mapping[str, Any] | None:
        return self.namespaces.get(name)

    def counted_names(self, namespace: str, counter: ObjectCounter) -> Set[str]:
        return frozenset(self.counted.get(namespace, set()))

    synced = True


def claim(name: str, namespace: str = "shop", counter: ObjectCounter = LB) -> LimitClaim:
    return LimitClaim(POLICY, counter.key, "Service", namespace, name)


def test_a_reservation_the_cache_never_confirms_lasts_until_its_maximum_age() -> None:
    clock = FakeClock()
    reservations = Reservations(grace_seconds=10, max_age_seconds=300, clock=clock)
    view = reservations.view(StaticCluster({"shop": {"existing"}}))

    reservations.reserve([claim("new")], "uid-1")

    assert view.counted_names("shop", LB) == {"existing", "new"}
    clock.now += 299.9  # no event, bookmark or list of Services meanwhile
    assert view.counted_names("shop", LB) == {"existing", "new"}
    clock.now += 0.2
    assert view.counted_names("shop", LB) == {"existing"}
    assert len(reservations) == 0  # expired reservations are purged on read


def test_a_reservation_ends_once_the_cache_is_current_past_its_deadline() -> None:
    """Before: a fixed 30 s, whatever the watch showed; a review sent straight to the
    webhook held a place that long though no object could come any more."""
    clock = FakeClock()
    reservations = Reservations(grace_seconds=10, max_age_seconds=300, clock=clock)
    view = reservations.view(StaticCluster())
    reservations.reserve([claim("web")], "uid-1")

    clock.now += 9
    reservations.caught_up("Service")  # an event before the deadline: web may still come
    assert view.counted_names("shop", LB) == {"web"}
    clock.now += 2
    assert view.counted_names("shop", LB) == {"web"}  # past the deadline, no news yet
    reservations.caught_up("Ingress")  # another kind's progress says nothing of Services
    assert view.counted_names("shop", LB) == {"web"}

    reservations.caught_up("Service")  # current 11 s after: web would have been shown

    assert view.counted_names("shop", LB) == set()
    assert len(reservations) == 0


def test_observing_the_object_releases_its_reservation() -> None:
    reservations = Reservations(clock=FakeClock())
    view = reservations.view(StaticCluster())
    reservations.reserve([claim("a")], "uid-a")
    reservations.reserve([claim("b")], "uid-b")

    reservations.observed("Service", "shop", "a")

    assert view.counted_names("shop", LB) == {"b"}
    reservations.observed("Service", "shop", "unknown")  # nothing reserved: a no-op
    reservations.observed("Ingress", "shop", "b")  # another kind with the same name
    assert view.counted_names("shop", LB) == {"b"}


def test_creates_without_a_name_each_hold_a_place() -> None:
    """Before: keyed on the name, a CREATE with an empty name reserved nothing."""
    reservations = Reservations(clock=FakeClock())
    view = reservations.view(StaticCluster())

    reservations.reserve([claim("")], "uid-1")
    reservations.reserve([claim("")], "uid-2")
    reservations.reserve([claim("")], "uid-2")  # a fabricated review may repeat a uid

    assert len(view.counted_names("shop", LB)) == 3
    assert len(reservations) == 3


def test_the_review_name_falls_back_to_the_objects_name() -> None:
    reservations = Reservations(clock=FakeClock())
    view = reservations.view(StaticCluster())

    reservations.reserve([claim("")], "uid-1", name="web-x7k2p")
    reservations.observed("Service", "shop", "web-x7k2p")

    assert view.counted_names("shop", LB) == set()


def test_a_counted_object_that_appears_releases_the_oldest_unnamed_reservation() -> None:
    clock = FakeClock()
    reservations = Reservations(clock=clock)
    view = reservations.view(StaticCluster())
    reservations.reserve([claim("")], "uid-old")
    clock.now += 1
    reservations.reserve([claim("")], "uid-new")
    clock.now += 1
    reservations.reserve([claim("named")], "uid-named")

    # The API server stored a generated name; the cache did not hold it before.
    reservations.observed("Service", "shop", "web-x7k2p", appeared=True, counted_by=[LB.key])

    left = view.counted_names("shop", LB)
    assert len(left) == 2 and "named" in left
    assert any("uid-new" in token for token in left)


def test_an_object_that_does_not_appear_newly_releases_no_unnamed_reservation() -> None:
    reservations = Reservations(clock=FakeClock())
    view = reservations.view(StaticCluster())
    reservations.reserve([claim("")], "uid-1")

    # A MODIFIED event of an object the cache held, or one another counter counts.
    reservations.observed("Service", "shop", "old", appeared=False, counted_by=[LB.key])
    reservations.observed("Service", "shop", "new", appeared=True, counted_by=["other"])
    reservations.observed("Service", "blog", "new", appeared=True, counted_by=[LB.key])

    assert len(view.counted_names("shop", LB)) == 1


def test_a_named_reservation_is_released_by_its_object_not_an_unnamed_one() -> None:
    reservations = Reservations(clock=FakeClock())
    view = reservations.view(StaticCluster())
    reservations.reserve([claim("")], "uid-unnamed")
    reservations.reserve([claim("web")], "uid-web")

    reservations.observed("Service", "shop", "web", appeared=True, counted_by=[LB.key])

    left = view.counted_names("shop", LB)
    assert len(left) == 1 and "uid-unnamed" in next(iter(left))


def test_an_object_both_reserved_and_seen_by_the_watch_counts_once() -> None:
    reservations = Reservations(clock=FakeClock())
    view = reservations.view(StaticCluster({"shop": {"a"}}))

    reservations.reserve([claim("a")], "uid-a")

    assert view.counted_names("shop", LB) == {"a"}
    assert len(view.counted_names("shop", LB)) == 1


def test_reservations_are_kept_apart_by_namespace_and_counter() -> None:
    reservations = Reservations(clock=FakeClock())
    view = reservations.view(StaticCluster())
    node_ports = services_of_type("NodePort")

    reservations.reserve([claim("a", "shop")], "uid-a")
    reservations.reserve([claim("b", "blog")], "uid-b")
    reservations.reserve([claim("c", "shop", node_ports)], "uid-c")

    assert view.counted_names("shop", LB) == {"a"}
    assert view.counted_names("blog", LB) == {"b"}
    assert view.counted_names("shop", node_ports) == {"c"}


def test_one_admission_under_two_limits_holds_both_and_is_released_at_once() -> None:
    reservations = Reservations(clock=FakeClock())
    view = reservations.view(StaticCluster())
    node_ports = services_of_type("NodePort")

    reservations.reserve([claim("a"), claim("a", counter=node_ports)], "uid-a")
    assert len(reservations) == 1
    assert view.counted_names("shop", node_ports) == {"a"}

    reservations.observed("Service", "shop", "a")

    assert view.counted_names("shop", LB) == set()
    assert view.counted_names("shop", node_ports) == set()


def test_the_view_reads_namespaces_from_the_base() -> None:
    base = StaticCluster()
    view = Reservations().view(base)

    assert view.get_namespace("shop") == base.namespaces["shop"]
    assert view.get_namespace("nowhere") is None


def test_purge_drops_every_expired_reservation() -> None:
    clock = FakeClock()
    reservations = Reservations(grace_seconds=5, clock=clock)
    reservations.reserve([claim("a", "shop")], "uid-a")
    reservations.reserve([claim("b", "blog")], "uid-b")
    clock.now += 3
    reservations.reserve([claim("c", "shop")], "uid-c")
    clock.now += 3
    reservations.caught_up("Service")

    assert reservations.purge() == 2

    assert len(reservations) == 1
    assert reservations.reserved_names("shop", LB.key) == {"c"}


def test_a_static_cluster_is_always_current() -> None:
    """With --cluster-state nothing ever appears: a reservation lasts the grace only."""
    clock = FakeClock()
    reservations = Reservations(grace_seconds=10, max_age_seconds=300, clock=clock)
    reservations.follow_static_cluster()
    reservations.reserve([claim("a")], "uid-a")

    clock.now += 9.9
    assert reservations.reserved_names("shop", LB.key) == {"a"}
    clock.now += 0.2
    assert reservations.reserved_names("shop", LB.key) == set()


def test_reserving_the_same_object_again_extends_its_reservation() -> None:
    clock = FakeClock()
    reservations = Reservations(grace_seconds=10, clock=clock)
    reservations.reserve([claim("a")], "uid-1")
    clock.now += 8
    reservations.reserve([claim("a")], "uid-2")  # a retry: another admission, same name
    clock.now += 8
    reservations.caught_up("Service")

    assert reservations.reserved_names("shop", LB.key) == {"a"}
    assert len(reservations) == 1


def test_fifty_concurrent_admissions_under_a_cap_of_two_let_exactly_two_through() -> None:
    reservations = Reservations()
    view = reservations.view(StaticCluster())
    allowed: list[str] = []

    def admit(i: int) -> None:
        with reservations.lock("shop"):
            names = view.counted_names("shop", LB)
            if len(names) < 2:
                reservations.reserve([claim("")], f"uid-{i}")  # unnamed: generateName
                allowed.append(f"uid-{i}")

    race(admit, 50)

    assert len(allowed) == 2
    assert len(view.counted_names("shop", LB)) == 2
    assert reservations._locks == {}  # namespace locks are dropped once nobody holds them


def test_admissions_in_different_namespaces_do_not_wait_for_each_other() -> None:
    reservations = Reservations()
    other_done = threading.Event()

    def in_blog() -> None:
        with reservations.lock("blog"):
            other_done.set()

    with reservations.lock("shop"):
        thread = threading.Thread(target=in_blog)
        thread.start()
        assert other_done.wait(timeout=10)
        thread.join(timeout=10)
