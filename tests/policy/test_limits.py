"""Limit semantics exactly as SPEC states them."""

from __future__ import annotations

import pytest

from tests.support import namespace, service
from webhook.cluster.memory import MemoryCluster
from webhook.policy.blocks.counters import cap_for_namespace_object, cap_in_namespace
from webhook.policy.model.decision import ViolationSource

from .conftest import engine_for, make_request

CAP = """
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: cap-lbs}
spec:
  match: {kinds: [Service], operations: [CREATE, UPDATE, DELETE]}
  limit:
    where: "object.spec.type == 'LoadBalancer'"
    maxExpression: >-
      has(namespaceObject.metadata.annotations)
      && 'edgewarden.dev/max-loadbalancers' in namespaceObject.metadata.annotations
      ? int(namespaceObject.metadata.annotations['edgewarden.dev/max-loadbalancers']) : 2
    message: "too many load balancers: use an Ingress"
"""


@pytest.fixture
def engine():
    return engine_for(CAP)


def cluster_with(lbs: int, ns: dict | None = None) -> MemoryCluster:
    cluster = MemoryCluster([ns or namespace(name="team")])
    for i in range(lbs):
        cluster.add(service(name=f"lb{i}", namespace="team", type="LoadBalancer"))
    cluster.add(service(name="internal", namespace="team", type="ClusterIP"))
    return cluster


def test_create_under_the_cap_is_allowed_and_claims_a_place(engine) -> None:
    decision = engine.evaluate(
        make_request("CREATE", service(name="new", namespace="team", type="LoadBalancer")),
        cluster_with(1),
    )
    assert decision.allowed
    assert [(c.policy, c.namespace, c.name) for c in decision.limit_claims] == [
        ("cap-lbs", "team", "new")
    ]


def test_create_at_the_cap_is_denied_with_count_and_advice(engine) -> None:
    decision = engine.evaluate(
        make_request("CREATE", service(name="new", namespace="team", type="LoadBalancer")),
        cluster_with(2),
    )
    assert not decision.allowed
    violation = decision.violations[0]
    assert violation.source is ViolationSource.LIMIT
    assert violation.message == (
        "too many load balancers: use an Ingress (namespace team has 2 of 2)"
    )
    assert decision.limit_claims == []


def test_objects_that_do_not_count_are_never_limited(engine) -> None:
    decision = engine.evaluate(
        make_request("CREATE", service(name="new", namespace="team")), cluster_with(5)
    )
    assert decision.allowed and decision.limit_claims == []


def test_update_that_makes_an_object_counted_is_denied_at_the_cap(engine) -> None:
    old = service(name="internal", namespace="team", type="ClusterIP")
    new = service(name="internal", namespace="team", type="LoadBalancer")
    decision = engine.evaluate(make_request("UPDATE", new, old), cluster_with(2))
    assert not decision.allowed


def test_update_of_an_already_counted_object_is_never_denied_even_over_a_lowered_cap(
    engine,
) -> None:
    lowered = namespace(name="team", annotations={"edgewarden.dev/max-loadbalancers": "1"})
    cluster = cluster_with(3, lowered)
    old = service(name="lb0", namespace="team", type="LoadBalancer")
    new = service(name="lb0", namespace="team", type="LoadBalancer", labels={"v": "2"})
    decision = engine.evaluate(make_request("UPDATE", new, old), cluster)
    assert decision.allowed and decision.violations == []
    assert decision.limit_claims == []


def test_delete_is_never_judged_by_a_limit(engine) -> None:
    old = service(name="lb0", namespace="team", type="LoadBalancer")
    decision = engine.evaluate(make_request("DELETE", None, old), cluster_with(5))
    assert decision.allowed and decision.violations == []


def test_namespace_annotation_raises_and_lowers_the_cap(engine) -> None:
    raised = namespace(name="team", annotations={"edgewarden.dev/max-loadbalancers": "3"})
    new = service(name="new", namespace="team", type="LoadBalancer")
    assert engine.evaluate(make_request("CREATE", new), cluster_with(2, raised)).allowed
    zero = namespace(name="team", annotations={"edgewarden.dev/max-loadbalancers": "0"})
    assert not engine.evaluate(make_request("CREATE", new), cluster_with(0, zero)).allowed


def test_malformed_cap_annotation_is_an_evaluation_error_naming_the_expression(engine) -> None:
    broken = namespace(name="team", annotations={"edgewarden.dev/max-loadbalancers": "lots"})
    decision = engine.evaluate(
        make_request("CREATE", service(name="new", namespace="team", type="LoadBalancer")),
        cluster_with(0, broken),
    )
    assert not decision.allowed
    assert decision.violations[0].source is ViolationSource.ERROR
    assert "maxExpression" in decision.violations[0].message


def test_the_object_itself_is_not_counted_twice(engine) -> None:
    # A retried CREATE (or a watch that already saw it) must not count the object twice.
    cluster = cluster_with(1)
    cluster.add(service(name="new", namespace="team", type="LoadBalancer"))
    decision = engine.evaluate(
        make_request("CREATE", service(name="new", namespace="team", type="LoadBalancer")), cluster
    )
    assert decision.allowed


def test_limit_max_reports_the_cap_per_namespace(engine) -> None:
    policy = engine.policies.policies[0]
    plain = namespace(name="a")
    capped = namespace(name="b", annotations={"edgewarden.dev/max-loadbalancers": "5"})
    assert cap_for_namespace_object(policy.limit, plain) == 2
    assert cap_for_namespace_object(policy.limit, capped) == 5


def test_counters_are_exposed_for_the_cluster_cache(engine) -> None:
    (counter,) = engine.counters()
    assert counter.kind == "Service"
    assert counter.counts(service(name="x", namespace="team", type="LoadBalancer"))
    assert not counter.counts(service(name="x", namespace="team", type="NodePort"))
    assert not counter.counts({"kind": "Service", "metadata": {"name": "no-spec"}})


def test_a_changed_namespace_annotation_takes_effect_at_once(engine) -> None:
    # The cap is remembered per Namespace object; a new object (an update) is re-read.
    cluster = cluster_with(2)
    new = service(name="new", namespace="team", type="LoadBalancer")
    assert not engine.evaluate(make_request("CREATE", new), cluster).allowed
    raised = namespace(name="team", annotations={"edgewarden.dev/max-loadbalancers": "3"})
    cluster.add(raised)
    assert engine.evaluate(make_request("CREATE", new), cluster).allowed
    lowered = namespace(name="team", annotations={"edgewarden.dev/max-loadbalancers": "2"})
    cluster.add(lowered)
    assert not engine.evaluate(make_request("CREATE", new), cluster).allowed


def test_unknown_namespaces_get_the_default_cap_each(engine) -> None:
    cluster = MemoryCluster()
    for ns in ("a", "b"):
        cluster.add(service(name="lb0", namespace=ns, type="LoadBalancer"))
        cluster.add(service(name="lb1", namespace=ns, type="LoadBalancer"))
        assert not engine.evaluate(
            make_request("CREATE", service(name="new", namespace=ns, type="LoadBalancer")), cluster
        ).allowed
    assert engine.evaluate(
        make_request("CREATE", service(name="new", namespace="c", type="LoadBalancer")), cluster
    ).allowed


def test_limit_in_namespace_decides_applicability_as_admission_does() -> None:
    engine = engine_for(
        """
        apiVersion: edgewarden.dev/v1alpha1
        kind: Policy
        metadata: {name: cap-payments}
        spec:
          match:
            kinds: [Service]
            namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: payments}}
            exclude: {namespaces: [kube-system]}
          limit: {max: 3}
        """
    )
    (policy,) = engine.policies.policies
    # The automatic name label counts here too, though the object does not carry it.
    assert cap_in_namespace(policy, namespace(name="payments")) == 3
    assert cap_in_namespace(policy, namespace(name="shop")) is None
    assert cap_in_namespace(policy, namespace(name="kube-system")) is None
    # A CREATE in payments is denied at that very cap.
    cluster = MemoryCluster([namespace(name="payments")])
    for i in range(3):
        cluster.add(service(name=f"s{i}", namespace="payments"))
    assert not engine.evaluate(
        make_request("CREATE", service(name="new", namespace="payments")), cluster
    ).allowed
