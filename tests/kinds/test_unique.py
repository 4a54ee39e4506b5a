"""The ``unique`` block and unique-ingress-hosts: exact through the watch cache, exact under
concurrent creates, the same in ``check``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import webhook.cli  # noqa: F401  (registers every command on the app)
from tests.cluster.conftest import FAST
from tests.kubeapi import KubeApi
from tests.kubeapi.resources import DEFAULT_RESOURCES, Resource
from tests.support import api_client, eventually, ingress, namespace, race, write_kubeconfig
from tests.support.gateway import httproute
from webhook.admission.handlers import CLUSTER_LOCK
from webhook.cli.app import app
from webhook.cluster.kube import KubeCluster
from webhook.cluster.reservations import Reservations
from webhook.errors import PolicyLoadError
from webhook.policy.engine.evaluation import Engine
from webhook.policy.load.loader import load_policies
from webhook.policy.model.kinds import SHORT_NAMES
from webhook.policy.model.request import make_request

ROOT = Path(__file__).parents[2]
POLICY = ROOT / "policies" / "unique-ingress-hosts.yaml"
HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes")


@pytest.fixture
def gateway_api() -> Iterator[KubeApi]:
    with KubeApi(resources=(*DEFAULT_RESOURCES, HTTPROUTES)) as api:
        for name in ("shop", "blog", "evil"):
            api.create(namespace(name=name))
        yield api


@pytest.fixture
def engine() -> Engine:
    return Engine(load_policies(POLICY))


@pytest.fixture
def cluster(gateway_api: KubeApi, tmp_path: Path, engine: Engine) -> Iterator[KubeCluster]:
    config = write_kubeconfig(tmp_path / "kubeconfig", server=gateway_api.url,
                              ca_pem=gateway_api.ca_pem)
    reservations = Reservations(grace_seconds=600)
    made = KubeCluster(api_client(config), settings=FAST, reservations=reservations)
    made.watch_kinds(engine.policies.kinds())
    made.register_key_indexes(engine.key_indexes())
    made.start()
    assert made.wait_synced(timeout=10)
    yield made
    made.stop()


def holders(cluster: KubeCluster, engine: Engine, key: str) -> set[tuple[str, str, str]]:
    """Who holds exactly ``key`` (a HostPath key: "HOST TYPE PATH")."""
    (index,) = engine.key_indexes()
    return set(cluster.key_holders(index, key).get(key, ()))


def test_the_watch_cache_keeps_who_serves_each_host_and_path(
    gateway_api: KubeApi, cluster: KubeCluster, engine: Engine
) -> None:
    gateway_api.create(ingress(name="front", namespace="shop", host="shop.example.com"))
    gateway_api.create(httproute(name="blog", namespace="blog", hostnames=["blog.example.com"],
                                 paths=["/", "/feed"]))
    eventually(lambda: holders(cluster, engine, "blog.example.com PathPrefix /feed")
               == {("HTTPRoute", "blog", "blog")})
    eventually(lambda: holders(cluster, engine, "shop.example.com")
               == {("Ingress", "shop", "front")})
    # A route that drops a path gives it up; a deleted route gives up everything.
    gateway_api.update(httproute(name="blog", namespace="blog", hostnames=["blog.example.com"],
                                 paths=["/"]))
    eventually(lambda: holders(cluster, engine, "blog.example.com PathPrefix /feed") == set())
    gateway_api.delete("httproutes", "blog", namespace="blog")
    eventually(lambda: holders(cluster, engine, "blog.example.com PathPrefix /") == set())


def test_an_httproute_taking_a_host_an_ingress_elsewhere_serves_is_denied(
    gateway_api: KubeApi, cluster: KubeCluster, engine: Engine
) -> None:
    gateway_api.create(ingress(name="front", namespace="shop", host="shop.example.com"))
    eventually(lambda: holders(cluster, engine, "shop.example.com"))
    request = make_request("CREATE", httproute(name="steal", namespace="evil",
                                               hostnames=["shop.example.com"]))
    decision = engine.evaluate(request, cluster)
    assert not decision.allowed
    assert "shop.example.com (whole host) is held by Ingress shop/front" in decision.deny_message()
    same_namespace = make_request("CREATE", httproute(name="more", namespace="shop",
                                                      hostnames=["shop.example.com"]))
    assert engine.evaluate(same_namespace, cluster).allowed


def test_concurrent_creates_of_one_host_in_many_namespaces_admit_exactly_one(
    gateway_api: KubeApi, cluster: KubeCluster, engine: Engine
) -> None:
    reservations = Reservations(grace_seconds=600)
    cluster.attach_reservations(reservations)
    view = reservations.view(cluster)
    requests = [
        make_request("CREATE", httproute(name="r", namespace=f"team-{i}",
                                         hostnames=["contested.example.com"]), uid=f"uid-{i}")
        for i in range(20)
    ]
    allowed: list[str] = []

    def admit(i: int) -> None:
        request = requests[i]
        with reservations.lock(CLUSTER_LOCK):
            decision = engine.evaluate(request, view)
            if decision.allowed:
                reservations.reserve(decision.limit_claims, request.uid,
                                     keys=decision.key_claims)
                allowed.append(request.namespace)

    race(admit, 20)

    assert len(allowed) == 1
    (winner,) = allowed
    gateway_api.create(namespace(name=winner))
    gateway_api.create(httproute(name="r", namespace=winner,
                                 hostnames=["contested.example.com"]))
    eventually(lambda: len(reservations) == 0, what="the watch settled the reservation")
    late = make_request("CREATE", httproute(name="late", namespace="late",
                                            hostnames=["contested.example.com"]))
    assert f"HTTPRoute {winner}/r" in engine.evaluate(late, view).deny_message()


def test_a_dry_run_is_judged_but_the_edge_reserves_nothing_for_it(engine: Engine) -> None:
    # The server reserves only what an allowed, non-dry-run decision claims (handlers.py).
    request = make_request("CREATE", httproute(name="r", namespace="a",
                                               hostnames=["x.example.com"]), dry_run=True)
    decision = engine.evaluate(request, Reservations().view(_empty()))
    assert decision.allowed and decision.key_claims


def _empty():
    from webhook.policy.model.ports import EmptyCluster

    return EmptyCluster()


MIXED = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: front, namespace: shop}
spec:
  rules: [{host: shop.example.com}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: steal, namespace: evil}
spec:
  hostnames: [shop.example.com]
  rules: [{backendRefs: [{name: web, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: more, namespace: shop}
spec:
  hostnames: [shop.example.com]
"""


def test_check_refuses_the_second_namespace_claiming_a_host_in_one_manifest_set(
    tmp_path: Path,
) -> None:
    manifest = tmp_path / "mixed.yaml"
    manifest.write_text(MIXED)
    result = CliRunner().invoke(app, ["check", "--policies", str(POLICY), "-f", str(manifest),
                                      "-o", "json", "--assume-unlabelled"],
                                catch_exceptions=False)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    found = {f"{r['resource']['namespace']}/{r['resource']['name']}":
             [f["result"] for f in r["findings"]] for r in report["results"]}
    assert found == {"shop/front": ["pass"], "evil/steal": ["deny"], "shop/more": ["pass"]}


def test_a_misspelt_gateway_field_is_refused_at_load_with_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "apiVersion: edgewarden.dev/v1alpha1\nkind: Policy\nmetadata: {name: p}\n"
        "spec:\n  match: {kinds: [Gateway]}\n  validations:\n"
        "    - expression: \"object.spec.listners.all(l, l.protocol == 'HTTPS')\"\n"
    )
    with pytest.raises(PolicyLoadError) as error:
        load_policies(path)
    (problem,) = error.value.problems
    assert "spec.validations[0].expression" in str(problem)
    assert "Gateway has no field spec.listners" in str(problem)
    assert "listeners" in str(problem)


def test_keys_that_are_not_strings_fail_the_policy_as_its_failure_policy_says(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "apiVersion: edgewarden.dev/v1alpha1\nkind: Policy\nmetadata: {name: p}\n"
        "spec:\n  match: {kinds: [Service]}\n  unique:\n"
        "    keys: \"object.spec.ports.map(p, p.port)\"\n"
    )
    engine = Engine(load_policies(path))
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "a"},
               "spec": {"ports": [{"port": 80}]}}
    decision = engine.evaluate(make_request("CREATE", service), _empty())
    assert not decision.allowed
    assert "must give a list of strings" in decision.deny_message()


def test_the_kinds_of_the_shipped_policy_are_ingress_and_the_gateway_api_routes() -> None:
    engine = Engine(load_policies(POLICY))
    assert set(engine.policies.kinds()) == {
        SHORT_NAMES[kind] for kind in ("Ingress", "HTTPRoute", "GRPCRoute", "TLSRoute")}


def test_an_ingress_of_tens_of_thousands_of_hosts_is_over_the_budget_and_fails_closed() -> None:
    # Building the list of keys is linear in the rules (about 2 µs of CEL a rule without
    # paths, budget.py): 2,000 rules fit the default 50 ms with room to spare; 40,000 do
    # not, and the policy fails by its failurePolicy (Fail).
    rules = [{"host": f"h{i}.example.com"} for i in range(40_000)]
    big = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": "big", "namespace": "a"}, "spec": {"rules": rules}}
    decision = Engine(load_policies(POLICY)).evaluate(make_request("CREATE", big), _empty())
    assert not decision.allowed
    assert "evaluation budget of 50 ms" in decision.deny_message()
    small = {**big, "spec": {"rules": rules[:2000]}}
    assert Engine(load_policies(POLICY)).evaluate(make_request("CREATE", small), _empty()).allowed
    assert "evaluation budget of 50 ms" in decision.deny_message()
    small = {**big, "spec": {"rules": rules[:200]}}
    assert Engine(load_policies(POLICY)).evaluate(make_request("CREATE", small), _empty()).allowed
