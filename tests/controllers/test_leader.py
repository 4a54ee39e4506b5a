"""Leader election over a Lease, against the API double: one replica leads, a silent leader
is replaced only after the lease duration as the *follower* measures it, a conflict never
makes two leaders, and a leader that leaves hands over at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kubeapi import KubeApi
from tests.support import api_client, eventually
from webhook.cluster.object_api import ObjectApi
from webhook.cluster.own_kinds import LEASE
from webhook.controllers.leader import LeaderElector, LeaderSettings

from .conftest import ServeFactory

SETTINGS = LeaderSettings(namespace="edgewarden", lease_duration=15, renew_deadline=10,
                          retry_period=2)


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def leases(kube_api: KubeApi, kubeconfig: Path) -> Iterator[ObjectApi]:
    with api_client(kubeconfig) as connection:
        yield ObjectApi(connection, LEASE)


def elector(leases: ObjectApi, name: str, ticks: Ticks,
            changes: list[tuple[str, bool]] | None = None) -> LeaderElector:
    record = changes if changes is not None else []
    return LeaderElector(leases, SETTINGS, identity=name, monotonic=ticks,
                         wall=lambda: 1_900_000_000.0 + ticks.now,
                         on_change=lambda leading: record.append((name, leading)))


def holder(kube_api: KubeApi) -> str | None:
    spec = kube_api.get("leases", "edgewarden-leader", namespace="edgewarden")["spec"]
    return spec.get("holderIdentity")


def test_the_first_replica_leads_and_the_second_follows(kube_api: KubeApi,
                                                        leases: ObjectApi) -> None:
    ticks, changes = Ticks(), []
    a, b = elector(leases, "a", ticks, changes), elector(leases, "b", ticks, changes)
    assert a.step() and not b.step()
    assert holder(kube_api) == "a"
    ticks.now += 5
    assert a.step() and not b.step(), "a renews; b has seen the record change"
    assert changes == [("a", True)]


def test_a_silent_leader_is_replaced_after_the_lease_duration_only(kube_api: KubeApi,
                                                                   leases: ObjectApi) -> None:
    ticks, changes = Ticks(), []
    a, b = elector(leases, "a", ticks, changes), elector(leases, "b", ticks, changes)
    assert a.step() and not b.step()
    ticks.now += 14  # a stops renewing (it hangs); b still trusts it
    assert not b.step()
    ticks.now += 1.5
    assert b.step(), "15 s without a change, as b measured it: b takes over"
    lease = kube_api.get("leases", "edgewarden-leader", namespace="edgewarden")["spec"]
    assert (lease["holderIdentity"], lease["leaseTransitions"]) == ("b", 1)
    # a wakes up: its renewal is no longer possible (b holds it), and past its renew
    # deadline it stops acting as leader.
    assert not a.step()
    assert ("a", False) in changes and ("b", True) in changes


def test_two_candidates_racing_for_an_expired_lease_cannot_both_win(
    kube_api: KubeApi, leases: ObjectApi
) -> None:
    ticks = Ticks()
    old, b, c = (elector(leases, n, ticks) for n in ("old", "b", "c"))
    assert old.step()
    assert not b.step() and not c.step()
    ticks.now += 20
    # Both read the expired lease; b writes first; c's write carries the stale
    # resourceVersion and is refused.
    stale = leases.get("edgewarden-leader", "edgewarden")
    assert b.step()
    assert not c.step()
    assert holder(kube_api) == "b"
    stale["spec"]["holderIdentity"] = "c"
    with pytest.raises(Exception, match="409"):
        leases.replace(stale)


def test_a_leader_that_leaves_releases_the_lease(kube_api: KubeApi, leases: ObjectApi) -> None:
    ticks = Ticks()
    a, b = elector(leases, "a", ticks), elector(leases, "b", ticks)
    assert a.step() and not b.step()
    a.release()
    assert not a.leading and holder(kube_api) is None
    assert b.step(), "no need to wait out the lease duration"


def test_a_stopping_server_hands_the_lease_over(crd_api: KubeApi, serve: ServeFactory) -> None:
    served = serve(crd_api)
    eventually(lambda: served.controllers.elector.leading, what="leading")
    assert holder(crd_api) == served.controllers.elector.identity
    served.server.stop()
    assert holder(crd_api) is None
