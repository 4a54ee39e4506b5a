"""Claims (webhook/cluster/claims.py) against the Kubernetes API double: compare-and-swap
arbitration between replicas (one ClaimBook per replica, one API server), overlaps across
hosts, the count under a ``where`` limit, expiry, squatting, the controller's pass, and the
API server going away (the policy's failurePolicy decides)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.kubeapi import DEFAULT_RESOURCES, KubeApi, Resource
from tests.policy.test_unique_ownership import grpcroute
from tests.support import api_client, namespace, race, service
from tests.support.kubeconfig import write_kubeconfig
from webhook.admission.claiming import ClaimGate, ClaimPlan
from webhook.admission.loaded import LoadedPolicies
from webhook.cluster.claims import (
    EXPIRED,
    HELD,
    PENDING,
    ClaimBook,
    ClaimSettings,
    ClaimUnavailable,
    sweep,
)
from webhook.cluster.claims_api import KubeClaimStore
from webhook.cluster.memory import MemoryCluster
from webhook.policy.load.loader import load_policies
from webhook.policy.model.decision import Decision
from webhook.policy.model.policy import PolicySet
from webhook.policy.model.request import make_request

CLAIMS = Resource("edgewarden.dev", "v1alpha1", "Claim", "claims")
HOME = "edgewarden"
REPO = Path(__file__).parents[2]
UNIQUE_HOSTS = REPO / "policies" / "unique-ingress-hosts.yaml"
PENDING_SECONDS = 10.0
COOLDOWN_SECONDS = 300.0

PUBLIC_SERVICES = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: limit-public-services}
spec:
  mode: Enforce
  failurePolicy: FAILURE
  match: {kinds: [Service], operations: [CREATE, UPDATE]}
  limit:
    where: >-
      has(object.metadata.labels) && 'exposure' in object.metadata.labels
      && object.metadata.labels['exposure'] == 'public'
    max: 2
    message: "at most 2 public Services per namespace"
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def ingress(name: str, ns: str, host: str, path: str | None = "/",
            path_type: str = "Prefix") -> dict[str, Any]:
    rule: dict[str, Any] = {"host": host}
    if path is not None:
        rule["http"] = {"paths": [{"path": path, "pathType": path_type, "backend": {
            "service": {"name": "web", "port": {"number": 80}}}}]}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"ingressClassName": "nginx", "rules": [rule]}}


def public_service(name: str, ns: str) -> dict[str, Any]:
    obj = service(name=name, namespace=ns)
    obj["metadata"]["labels"] = {"exposure": "public"}
    return obj


@dataclass
class Replica:
    """One replica's view of the world: its own claim book and gate, one shared cluster."""

    book: ClaimBook
    gate: ClaimGate
    loaded: LoadedPolicies
    cluster: MemoryCluster
    uids: Iterator[int] = field(default_factory=itertools.count)

    def plan(self, obj: dict[str, Any], operation: str = "CREATE") -> tuple[Decision,
                                                                           ClaimPlan | None]:
        request = make_request(operation, obj, uid=f"{id(self)}-{next(self.uids)}")
        decision = self.loaded.engine.evaluate(request, self.cluster)
        if not decision.allowed:
            return decision, None
        known = self.cluster.get_namespace(request.namespace) is not None
        plan, _, _ = self.gate.split(self.loaded, request, decision, known)
        return decision, plan

    def admit(self, obj: dict[str, Any]) -> Decision:
        """What /validate answers: the engine's verdict, then the claims."""
        decision, plan = self.plan(obj)
        if plan is not None:
            asyncio.run(self.gate.take(plan, decision, self.cluster))
        return decision


@pytest.fixture
def claims_api() -> Iterator[KubeApi]:
    with KubeApi(resources=(*DEFAULT_RESOURCES, CLAIMS)) as api:
        yield api


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cluster() -> MemoryCluster:
    return MemoryCluster([namespace(name=name) for name in
                          ("shop", "blog", "payments", *(f"team-{i}" for i in range(8)))])


@pytest.fixture
def replica(claims_api: KubeApi, cluster: MemoryCluster, clock: Clock,
            tmp_path: Path) -> Callable[..., Replica]:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server=claims_api.url,
                                  ca_pem=claims_api.ca_pem)

    def make(policies: PolicySet | None = None) -> Replica:
        loaded = LoadedPolicies.build(policies or load_policies(UNIQUE_HOSTS), dry_run=False)
        for engine in loaded.engines():
            cluster.register_counters(engine.counters())
            cluster.register_key_indexes(engine.key_indexes())
        book = ClaimBook(KubeClaimStore(api_client(kubeconfig), HOME), HOME,
                         ClaimSettings(PENDING_SECONDS, COOLDOWN_SECONDS), clock=clock)
        return Replica(book, ClaimGate(book, manage_quotas=True), loaded, cluster)

    return make


def public_limit(failure: str = "Fail") -> PolicySet:
    from tests.support import policies_from_yaml

    return policies_from_yaml(PUBLIC_SERVICES.replace("FAILURE", failure))


def claims(api: KubeApi) -> list[dict[str, Any]]:
    return api.objects("claims", namespace=HOME)


def entries(api: KubeApi) -> list[dict[str, Any]]:
    found = [e for c in claims(api) for e in c["spec"]["entries"]]
    return found


# ---- unique keys -------------------------------------------------------------------------


def test_eight_namespaces_racing_for_one_host_through_eight_replicas_leave_one_winner(
    replica: Callable[..., Replica], claims_api: KubeApi
) -> None:
    replicas = [replica() for _ in range(8)]
    won: list[str] = []
    refused: list[str] = []

    def attempt(i: int) -> None:
        decision = replicas[i].admit(ingress("web", f"team-{i}", "pay.example.com"))
        (won if decision.allowed else refused).append(f"team-{i}")

    race(attempt, 8)

    assert len(won) == 1, won
    assert len(refused) == 7
    [claim] = claims(claims_api)
    assert claim["spec"]["subject"] == "pay.example.com"
    assert claim["spec"]["holders"] == f"{won[0]}/web"
    assert claim["spec"]["state"] == PENDING
    [entry] = claim["spec"]["entries"]
    assert (entry["namespace"], entry["object"]) == (won[0], "web")


def test_a_prefix_under_another_namespaces_prefix_is_refused_by_the_claim_alone(
    replica: Callable[..., Replica]
) -> None:
    # Two replicas whose caches hold neither Ingress yet: only the claim can tell.
    first, second = replica(), replica()
    assert first.admit(ingress("web", "shop", "shop.example.com", "/")).allowed
    decision = second.admit(ingress("login", "blog", "shop.example.com", "/login"))
    assert not decision.allowed
    message = decision.deny_message()
    assert "unique-ingress-hosts" in message and "overlaps" in message and "shop/web" in message
    # Exact under the prefix overlaps too; another host is free.
    assert not second.admit(ingress("docs", "blog", "shop.example.com", "/docs", "Exact")
                            ).allowed
    assert second.admit(ingress("other", "payments", "other.example.com", "/")).allowed


def test_paths_beside_each_other_on_one_host_go_to_two_namespaces(
    replica: Callable[..., Replica], claims_api: KubeApi
) -> None:
    first, second = replica(), replica()
    assert first.admit(ingress("a", "shop", "split.example.com", "/shop")).allowed
    assert second.admit(ingress("b", "blog", "split.example.com", "/blog")).allowed
    [claim] = claims(claims_api)
    assert claim["spec"]["holders"] == "blog/b, shop/a"


def test_a_wildcard_and_a_host_under_it_in_two_claims_never_both_pass(
    replica: Callable[..., Replica], claims_api: KubeApi
) -> None:
    # Different hosts are different Claim objects: the swap alone does not see the overlap.
    # After its swap each admission reads the wildcards (a wildcard reads every claim of
    # its index) and withdraws on an overlap, so one at most wins, whatever the order.
    rounds = 12
    both = 0
    winners = 0
    for n in range(rounds):
        wild, host = replica(), replica()
        results: dict[str, bool] = {}

        def attempt(i: int, n: int = n, wild: Replica = wild, host: Replica = host,
                    results: dict[str, bool] = results) -> None:
            if i == 0:
                results["wild"] = wild.admit(
                    ingress("wild", "shop", f"*.w{n}.example.com", None)).allowed
            else:
                results["host"] = host.admit(
                    ingress("api", "blog", f"api.w{n}.example.com", "/")).allowed

        race(attempt, 2)
        assert set(results) == {"wild", "host"}
        both += results["wild"] and results["host"]
        winners += results["wild"] or results["host"]
    assert both == 0, "a wildcard and a host under it were both admitted"
    assert winners >= 1  # one passed at least once (both may withdraw in a dead heat)
    # Sequentially, the second is refused and names the first.
    first, second = replica(), replica()
    assert first.admit(ingress("wild", "shop", "*.seq.example.com", None)).allowed
    decision = second.admit(ingress("api", "blog", "api.seq.example.com", "/"))
    assert not decision.allowed and "*.seq.example.com" in decision.deny_message()


def test_the_same_namespace_may_split_a_host_and_a_repeat_writes_nothing(
    replica: Callable[..., Replica], claims_api: KubeApi
) -> None:
    one = replica()
    assert one.admit(ingress("web", "shop", "shop.example.com", "/")).allowed
    assert one.admit(ingress("api", "shop", "shop.example.com", "/api")).allowed
    writes = len(claims_api.writes())
    assert one.admit(ingress("web", "shop", "shop.example.com", "/")).allowed
    assert len(claims_api.writes()) == writes, "a repeat of a held key renews nothing"


def test_a_grpcroute_and_an_ingress_share_the_key_space_of_the_claims(
    replica: Callable[..., Replica]
) -> None:
    first, second = replica(), replica()
    assert first.admit(grpcroute("api", "shop", ["api.shop.example.com"])).allowed
    decision = second.admit(ingress("health", "blog", "api.shop.example.com", "/health",
                                    "Exact"))
    assert not decision.allowed
    assert "held by GRPCRoute shop/api" in decision.deny_message()


def test_a_grant_made_after_a_pending_claim_still_reserves_the_host(
    replica: Callable[..., Replica], cluster: MemoryCluster
) -> None:
    # blog's claim is pending (its Ingress not seen yet) when shop is granted the host:
    # the grant decides, as it does over a squatter the cache shows.
    first, second = replica(), replica()
    assert first.admit(ingress("web", "blog", "pay.example.com")).allowed
    cluster.add(namespace(name="shop", annotations={
        "edgewarden.dev/allowed-hostnames": "pay.example.com"}))
    decision = second.admit(ingress("pay", "shop", "pay.example.com"))
    assert decision.allowed
    assert not first.admit(ingress("again", "blog", "pay.example.com", "/again")).allowed


# ---- the count under a `where` limit -----------------------------------------------------


def test_a_where_limit_is_exact_under_forty_concurrent_creates_through_four_replicas(
    replica: Callable[..., Replica], claims_api: KubeApi
) -> None:
    replicas = [replica(public_limit()) for _ in range(4)]
    allowed: list[str] = []
    denied: list[str] = []

    def attempt(i: int) -> None:
        decision = replicas[i % 4].admit(public_service(f"svc-{i}", "shop"))
        (allowed if decision.allowed else denied).append(decision.deny_message())

    race(attempt, 40)

    assert len(allowed) == 2
    assert len(denied) == 38
    assert all("at most 2 public Services per namespace" in m for m in denied)
    assert len(entries(claims_api)) == 2
    # One write per admitted create, none per refusal (a lost swap is retried, not stored).
    stored = [r for r in claims_api.writes() if r.plural == "claims"]
    assert len(stored) >= 2
    # Another namespace has its own count.
    assert replicas[0].admit(public_service("svc", "blog")).allowed


def test_objects_from_before_claims_count_with_the_claims(
    replica: Callable[..., Replica], cluster: MemoryCluster
) -> None:
    cluster.add(public_service("old", "shop"))
    one, two = replica(public_limit()), replica(public_limit())
    assert one.admit(public_service("new", "shop")).allowed
    # The second replica's cache shows "old" only: 1 of 2, but the claim holds "new".
    decision = two.admit(public_service("third", "shop"))
    assert not decision.allowed
    assert "has 2 of 2" in decision.deny_message()


# ---- expiry and squatting ----------------------------------------------------------------


def test_a_pending_claim_whose_object_never_appears_expires(
    replica: Callable[..., Replica], clock: Clock
) -> None:
    squatter, legitimate = replica(), replica()
    assert squatter.admit(ingress("web", "blog", "pay.example.com")).allowed
    assert not legitimate.admit(ingress("pay", "payments", "pay.example.com")).allowed
    clock.now += PENDING_SECONDS + 0.1
    assert legitimate.admit(ingress("pay", "payments", "pay.example.com")).allowed


def test_repeating_an_unfulfilled_review_does_not_renew_its_hold(
    replica: Callable[..., Replica], clock: Clock, claims_api: KubeApi, cluster: MemoryCluster
) -> None:
    squatter, legitimate = replica(), replica()
    assert squatter.admit(ingress("web", "blog", "pay.example.com")).allowed
    first = entries(claims_api)[0]["expiresAt"]
    # Repeated within its life: nothing is renewed.
    clock.now += PENDING_SECONDS / 2
    assert squatter.admit(ingress("web", "blog", "pay.example.com")).allowed
    assert [e["expiresAt"] for e in entries(claims_api)] == [first]
    # Repeated after it expired: recorded, but holding nothing against others (cool-down).
    clock.now += PENDING_SECONDS
    assert squatter.admit(ingress("web", "blog", "pay.example.com")).allowed
    states = sorted((e["state"], e.get("blocking", True)) for e in entries(claims_api))
    assert states == [(EXPIRED, True), (PENDING, False)]
    assert legitimate.admit(ingress("pay", "payments", "pay.example.com")).allowed
    # One review every 8 s for the rest of the cool-down blocks no legitimate create.
    for n in range(int(COOLDOWN_SECONDS / 8) - 2):
        clock.now += 8
        assert squatter.admit(ingress("web", "blog", "pay.example.com")).allowed
        assert legitimate.admit(ingress(f"pay-{n}", "payments", "pay.example.com")).allowed
    # The legitimate object appears: now the host is held, and the squatter refused.
    cluster.add(ingress("pay", "payments", "pay.example.com"))
    assert not squatter.admit(ingress("web", "blog", "pay.example.com")).allowed


def test_a_namespace_the_cache_does_not_know_holds_nothing_against_others(
    replica: Callable[..., Replica]
) -> None:
    squatter, legitimate = replica(), replica()
    assert squatter.admit(ingress("web", "no-such-namespace", "pay.example.com")).allowed
    assert legitimate.admit(ingress("pay", "payments", "pay.example.com")).allowed


# ---- the controller's pass ---------------------------------------------------------------


def test_the_pass_confirms_releases_expires_and_collects(
    replica: Callable[..., Replica], claims_api: KubeApi, cluster: MemoryCluster,
    clock: Clock
) -> None:
    one = replica()
    indexes = one.loaded.engine.key_indexes()
    assert one.admit(ingress("web", "shop", "shop.example.com")).allowed
    assert one.admit(ingress("ghost", "blog", "ghost.example.com")).allowed
    # The first object appears; the second never does.
    cluster.add(ingress("web", "shop", "shop.example.com"))
    result = sweep(one.book, cluster, indexes, [])
    assert result.confirmed == 1
    by_subject = {c["spec"]["subject"]: c["spec"] for c in claims(claims_api)}
    assert by_subject["shop.example.com"]["state"] == HELD
    assert by_subject["ghost.example.com"]["state"] == PENDING

    clock.now += PENDING_SECONDS + 1
    assert sweep(one.book, cluster, indexes, []).expired == 1
    by_subject = {c["spec"]["subject"]: c["spec"] for c in claims(claims_api)}
    assert by_subject["ghost.example.com"]["state"] == EXPIRED

    # The object goes: its claim is released, and the Claim object with it.
    cluster.remove("Ingress", "shop", "web")
    assert sweep(one.book, cluster, indexes, []).released == 1
    assert {c["spec"]["subject"] for c in claims(claims_api)} == {"ghost.example.com"}
    clock.now += COOLDOWN_SECONDS
    sweep(one.book, cluster, indexes, [])
    assert claims(claims_api) == []


def test_claims_of_a_policy_that_is_gone_are_collected(
    replica: Callable[..., Replica], claims_api: KubeApi, cluster: MemoryCluster
) -> None:
    one = replica()
    assert one.admit(ingress("web", "shop", "shop.example.com")).allowed
    assert len(claims(claims_api)) == 1
    result = sweep(one.book, cluster, [], [])  # no loaded policy has that index any more
    assert result.orphans == 1
    assert claims(claims_api) == []


def test_a_count_entry_is_confirmed_and_released_by_the_object(
    replica: Callable[..., Replica], claims_api: KubeApi, cluster: MemoryCluster
) -> None:
    one = replica(public_limit())
    counters = one.loaded.engine.counters()
    assert one.admit(public_service("web", "shop")).allowed
    cluster.add(public_service("web", "shop"))
    assert sweep(one.book, cluster, [], counters).confirmed == 1
    assert [e["state"] for e in entries(claims_api)] == [HELD]
    cluster.remove("Service", "shop", "web")
    assert sweep(one.book, cluster, [], counters).released == 1
    assert claims(claims_api) == []


# ---- the API server cannot say -----------------------------------------------------------


def test_api_server_down_denies_under_failure_policy_fail_with_the_reason(
    replica: Callable[..., Replica], claims_api: KubeApi
) -> None:
    one = replica(public_limit("Fail"))
    claims_api.fail("get", "claims", code=503, reason="ServiceUnavailable")
    decision = one.admit(public_service("web", "shop"))
    assert not decision.allowed
    message = decision.deny_message()
    assert "could not take its claim at the API server" in message
    assert "503" in message and "\n" not in message


def test_api_server_down_admits_with_a_warning_under_failure_policy_ignore(
    replica: Callable[..., Replica], claims_api: KubeApi
) -> None:
    one = replica(public_limit("Ignore"))
    claims_api.hang_up("get", "claims")
    decision = one.admit(public_service("web", "shop"))
    assert decision.allowed
    assert any("could not take its claim" in w and "Ignore" in w for w in decision.warnings)


def test_without_the_claim_crd_the_message_says_to_install_it(
    kube_api: KubeApi, cluster: MemoryCluster, clock: Clock, tmp_path: Path
) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server=kube_api.url,
                                  ca_pem=kube_api.ca_pem)
    book = ClaimBook(KubeClaimStore(api_client(kubeconfig), HOME), HOME, clock=clock)
    with pytest.raises(ClaimUnavailable, match="Claim CRD is not installed"):
        book.store.get("key-anything")


def test_dry_run_and_denied_requests_write_no_claim(
    replica: Callable[..., Replica], claims_api: KubeApi
) -> None:
    one = replica()
    assert one.admit(ingress("web", "shop", "shop.example.com")).allowed
    writes = len(claims_api.writes())
    assert not one.admit(ingress("web", "blog", "shop.example.com")).allowed
    request = make_request("CREATE", ingress("x", "blog", "x.example.com"), dry_run=True)
    assert one.loaded.engine.evaluate(request, one.cluster).allowed
    assert len(claims_api.writes()) == writes


def test_a_claim_that_cannot_be_settled_in_time_fails_by_the_failure_policy(
    replica: Callable[..., Replica], claims_api: KubeApi
) -> None:
    one = replica(public_limit("Fail"))
    one.book.settings.deadline_seconds = 0.0  # spent before the first read
    decision = one.admit(public_service("web", "shop"))
    assert not decision.allowed
    assert "took longer than 0 s" in decision.deny_message()
    assert claims(claims_api) == []
    assert one.book.counters()["failed"] == 1


def test_a_held_count_entry_retires_once_every_cache_counts_its_object(
    replica: Callable[..., Replica], claims_api: KubeApi, cluster: MemoryCluster,
    clock: Clock
) -> None:
    one = replica(public_limit())
    counters = one.loaded.engine.counters()
    for name in ("a", "b"):
        assert one.admit(public_service(name, "shop")).allowed
        cluster.add(public_service(name, "shop"))
    assert sweep(one.book, cluster, [], counters).confirmed == 2
    clock.now += one.book.settings.retire_seconds
    assert sweep(one.book, cluster, [], counters).retired == 2
    assert claims(claims_api) == []
    # The cap still holds: the caches count what the claims no longer list.
    decision = one.admit(public_service("c", "shop"))
    assert not decision.allowed and "has 2 of 2" in decision.deny_message()


def test_a_create_without_a_name_is_confirmed_by_the_object_that_appears(
    replica: Callable[..., Replica], claims_api: KubeApi, cluster: MemoryCluster
) -> None:
    one = replica(public_limit())
    counters = one.loaded.engine.counters()
    unnamed = public_service("", "shop")
    unnamed["metadata"] = {"generateName": "web-", "namespace": "shop",
                           "labels": {"exposure": "public"}}
    assert one.admit(unnamed).allowed
    assert [e["object"] for e in entries(claims_api)] == [""]
    cluster.add(public_service("web-x7k2p", "shop"))
    assert sweep(one.book, cluster, [], counters).confirmed == 1
    [entry] = entries(claims_api)
    assert (entry["object"], entry["state"]) == ("web-x7k2p", HELD)
