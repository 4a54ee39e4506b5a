"""The evaluation budget: an input larger than a policy can judge in time fails that policy
by its failurePolicy before CEL runs, decided by sizes (not clocks), the same offline and
in admission; a wall-clock deadline backs it up in the server."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest

from tests.support import policies_from_yaml
from webhook.cluster.memory import MemoryCluster
from webhook.policy.engine.compiled import CompiledPolicies
from webhook.policy.engine.evaluation import Engine
from webhook.policy.load.loader import load_policies
from webhook.policy.model.decision import FailurePolicy, ViolationSource
from webhook.policy.model.policy import PolicySet
from webhook.policy.model.request import make_request

from .conftest import namespace

POLICIES = Path(__file__).parents[2] / "policies"
TLS = "require-ingress-tls-in-production"
# The shipped set but unique-ingress-hosts, which has tests of its own (its keys are a
# separate budget story: tests/kinds/test_unique.py, tests/policy/test_budget_shipped.py).
SHIPPED = PolicySet(tuple(p for p in load_policies(POLICIES).policies
                          if p.name != "unique-ingress-hosts"))


def ingress(rules: int, *, covered: bool = True, tls_entries: int = 1) -> dict[str, Any]:
    hosts = [f"h{i}.shop.example.com" for i in range(rules)]
    spec: dict[str, Any] = {
        "ingressClassName": "nginx",
        "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
                   "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}
                  for host in hosts],
    }
    if covered:
        chunks = [hosts[i::tls_entries] for i in range(tls_entries)]
        spec["tls"] = [{"hosts": chunk, "secretName": "tls"} for chunk in chunks]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "big", "namespace": "payments"}, "spec": spec}


@pytest.fixture
def cluster() -> MemoryCluster:
    return MemoryCluster([namespace(name="payments", labels={"environment": "production"})])


def verdict(engine: Engine, obj: dict[str, Any], cluster: MemoryCluster, old: Any = None,
            operation: str = "CREATE") -> Any:
    return engine.evaluate(make_request(operation, obj, old), cluster)


def test_inputs_within_the_assumed_sizes_are_not_even_costed(cluster: MemoryCluster) -> None:
    decision = verdict(Engine(SHIPPED, budget=1), ingress(100), cluster)
    assert decision.allowed, decision.violations


def test_a_large_ingress_within_the_budget_is_judged(cluster: MemoryCluster) -> None:
    assert verdict(Engine(SHIPPED), ingress(400), cluster).allowed
    denied = verdict(Engine(SHIPPED), ingress(400, covered=False), cluster)
    assert [v.policy for v in denied.violations] == [TLS]
    assert denied.violations[0].source is ViolationSource.VALIDATION


def test_an_ingress_over_the_budget_fails_the_policy_by_its_failure_policy(
    cluster: MemoryCluster,
) -> None:
    decision = verdict(Engine(SHIPPED), ingress(5000), cluster)
    assert not decision.allowed
    # Only the TLS policy fails: ingress-hosts-owned-by-namespace reads every rule too, but
    # its matchConditions (costed and run first) leave it out of a namespace granting no
    # hostnames, so what its validations would cost never counts.
    (violation,) = decision.violations
    assert violation.policy == TLS and violation.source is ViolationSource.ERROR
    assert "ingress-hosts-owned-by-namespace" not in decision.matched_policies
    assert "object.spec.rules holds 5,000 items" in violation.message
    assert "evaluation budget of 50 ms" in violation.message
    # The policy that reads nothing large still judged the object.
    assert "require-ingress-class" in decision.matched_policies
    # A larger budget (serve --evaluation-budget-ms) judges it on its merits.
    assert verdict(Engine(SHIPPED, budget=10_000_000), ingress(5000), cluster).allowed


def test_over_the_budget_an_ignore_policy_admits_and_reports_the_error(
    cluster: MemoryCluster,
) -> None:
    policies = policies_from_yaml(
        (POLICIES / "deny-external-ips.yaml").read_text().replace(
            "failurePolicy: Fail", "failurePolicy: Ignore")
    )
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "ips", "namespace": "payments"},
               "spec": {"ports": [{"port": 80}],
                        "externalIPs": [f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}"
                                        for i in range(100_000)]}}
    decision = verdict(Engine(policies), service, cluster, copy.deepcopy(service), "UPDATE")
    assert decision.allowed and not decision.violations
    (failure,) = decision.errors
    assert failure.ignored and "spec.externalIPs holds 100,000 items" in failure.message
    fail_closed = verdict(Engine(SHIPPED), service, cluster, copy.deepcopy(service), "UPDATE")
    assert not fail_closed.allowed
    assert [v.policy for v in fail_closed.violations] == ["deny-external-ips"]


def test_an_unaffordable_message_expression_falls_back_to_the_message(
    cluster: MemoryCluster,
) -> None:
    # Every host uncovered: the message filters the rules again to name the first one.
    obj = ingress(800, covered=False)
    guard = CompiledPolicies.compile(SHIPPED).guards[TLS]
    values = {"object": obj, "oldObject": None, "request": {},
              "namespaceObject": cluster.get_namespace("payments")}
    check = guard.cost(values)
    message = guard.message_cost(0, values)
    # Linear in the rules, as the check is (the closures' filter and map append; the Rust
    # binding's copied their result at each step and made this listing quadratic).
    assert check / 2 < message < check * 2
    engine = Engine(SHIPPED, budget=check + message / 2)
    (violation,) = [v for v in verdict(engine, obj, cluster).violations if v.policy == TLS]
    assert violation.source is ViolationSource.VALIDATION
    assert violation.message.startswith("Every Ingress host in production must be served")
    roomy = Engine(SHIPPED, budget=(check + message) * 2)
    (violation,) = [v for v in verdict(roomy, obj, cluster).violations if v.policy == TLS]
    assert "routes a host without TLS" in violation.message and "h0.shop" in violation.message


def test_the_budget_is_shared_by_the_policies_of_one_admission(cluster: MemoryCluster) -> None:
    # Two copies of the TLS policy: the second finds the budget spent by the first.
    text = (POLICIES / f"{TLS}.yaml").read_text()
    twice = policies_from_yaml(text + "\n---\n" + text.replace(f"name: {TLS}", "name: copy"))
    values = {"object": ingress(400), "oldObject": None, "request": {},
              "namespaceObject": cluster.get_namespace("payments")}
    one = CompiledPolicies.compile(twice).guards[TLS].cost(values)
    decision = verdict(Engine(twice, budget=one * 1.5), ingress(400), cluster)
    assert [(v.policy, v.source) for v in decision.violations] == [
        ("copy", ViolationSource.ERROR)
    ]
    assert "spent on other policies" in decision.violations[0].message


def test_the_deadline_fails_the_policies_not_yet_judged(cluster: MemoryCluster) -> None:
    # A clock that moves a second per reading: the first Ingress policy (in load order,
    # deny-ingress-nginx-snippets) is judged in time; the later ones are past a 1.5 s
    # deadline and fail by their failurePolicy (Fail: the request is denied, saying why;
    # require-ingress-class says Ignore).
    ticks = itertools.count()
    engine = Engine(SHIPPED, deadline=1.5, clock=lambda: float(next(ticks)))
    decision = verdict(engine, ingress(3, covered=False), cluster)
    # (judged in time: its matchConditions leave out an Ingress without ingress-nginx
    # annotations, so it matched nothing)
    assert decision.matched_policies == []
    late = [f for f in decision.errors if "deadline of 1,500 ms passed" in f.message]
    assert [(f.policy, f.ignored) for f in late] == [
        ("deny-nginx-org-snippets", False), ("ingress-hosts-owned-by-namespace", False),
        ("require-ingress-class", True), (TLS, False), ("restrict-wildcard-ingress-hosts", False),
    ]
    assert not decision.allowed
    assert SHIPPED.get(TLS).failure_policy is FailurePolicy.FAIL  # type: ignore[union-attr]
    # Offline engines have no deadline at all.
    assert not any("deadline" in f.message
                   for f in verdict(Engine(SHIPPED), ingress(3), cluster).errors)
