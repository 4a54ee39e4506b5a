"""Reservations: places under a limit held between an allowed admission and the watch."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Set
from typing import Any

from tests.support import race
from webhook.cluster.reservations import Reservations
from webhook.policy.decision import LimitClaim
from webhook.policy.ports import ObjectCounter

from .conftest import services_of_type

LB = services_of_type("LoadBalancer")
POLICY = "limit-loadbalancers-per-namespace"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


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


def test_a_reserved_name_counts_until_the_ttl_passes() -> None:
    clock = FakeClock()
    reservations = Reservations(ttl_seconds=30, clock=clock)
    view = reservations.view(StaticCluster({"shop": {"existing"}}))

    reservations.reserve([claim("new")])

    assert view.counted_names("shop", LB) == {"existing", "new"}
    clock.now += 29.9
    assert view.counted_names("shop", LB) == {"existing", "new"}
    clock.now += 0.2
    assert view.counted_names("shop", LB) == {"existing"}
    assert len(reservations) == 0  # expired reservations are purged on read


def test_observing_the_object_releases_its_reservation() -> None:
    reservations = Reservations(clock=FakeClock())
    view = reservations.view(StaticCluster())
    reservations.reserve([claim("a"), claim("b")])

    reservations.observed("Service", "shop", "a")

    assert view.counted_names("shop", LB) == {"b"}
    reservations.observed("Service", "shop", "unknown")  # nothing reserved: a no-op
    reservations.observed("Ingress", "shop", "b")  # another kind with the same name
    assert view.counted_names("shop", LB) == {"b"}


def test_an_object_both_reserved_and_seen_by_the_watch_counts_once() -> None:
    reservations = Reservations(clock=FakeClock())
    view = reservations.view(StaticCluster({"shop": {"a"}}))

    reservations.reserve([claim("a")])

    assert view.counted_names("shop", LB) == {"a"}
    assert len(view.counted_names("shop", LB)) == 1


def test_reservations_are_kept_apart_by_namespace_and_counter() -> None:
    reservations = Reservations(clock=FakeClock())
    view = reservations.view(StaticCluster())
    node_ports = services_of_type("NodePort")

    reservations.reserve([claim("a", "shop"), claim("b", "blog"), claim("c", "shop", node_ports)])

    assert view.counted_names("shop", LB) == {"a"}
    assert view.counted_names("blog", LB) == {"b"}
    assert view.counted_names("shop", node_ports) == {"c"}


def test_the_view_reads_namespaces_from_the_base() -> None:
    base = StaticCluster()
    view = Reservations().view(base)

    assert view.get_namespace("shop") == base.namespaces["shop"]
    assert view.get_namespace("nowhere") is None


def test_purge_drops_every_expired_reservation() -> None:
    clock = FakeClock()
    reservations = Reservations(ttl_seconds=5, clock=clock)
    reservations.reserve([claim("a", "shop"), claim("b", "blog")])
    clock.now += 3
    reservations.reserve([claim("c", "shop")])
    clock.now += 3

    assert reservations.purge() == 2

    assert len(reservations) == 1
    assert reservations.reserved_names("shop", LB.key) == {"c"}


def test_reserving_the_same_object_again_extends_its_reservation() -> None:
    clock = FakeClock()
    reservations = Reservations(ttl_seconds=10, clock=clock)
    reservations.reserve([claim("a")])
    clock.now += 8
    reservations.reserve([claim("a")])
    clock.now += 8

    assert reservations.reserved_names("shop", LB.key) == {"a"}
    assert len(reservations) == 1


def test_fifty_concurrent_admissions_under_a_cap_of_two_let_exactly_two_through() -> None:
    reservations = Reservations(ttl_seconds=60)
    view = reservations.view(StaticCluster())
    allowed: list[str] = []

    def admit(i: int) -> None:
        with reservations.lock("shop"):
            names = view.counted_names("shop", LB)
            if len(names) < 2:
                reservations.reserve([claim(f"lb-{i}")])
                allowed.append(f"lb-{i}")

    race(admit, 50)

    assert len(allowed) == 2
    assert view.counted_names("shop", LB) == set(allowed)
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
