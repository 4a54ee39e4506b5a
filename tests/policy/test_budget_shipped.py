"""The whole shipped set judges a legitimate 2,000-rule TLS Ingress within the default
evaluation budget (issue 21), with the right decision, while an input past the bound fails
the policies that cannot afford it as their failurePolicy says. Sizes decide, not clocks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support import namespace
from webhook.cluster.memory import MemoryCluster
from webhook.policy.engine.budget import DEFAULT_BUDGET, Guard
from webhook.policy.engine.compiled import CompiledPolicies
from webhook.policy.engine.evaluation import Engine
from webhook.policy.load.loader import load_policies
from webhook.policy.model.decision import Decision, FailurePolicy, ViolationSource
from webhook.policy.model.request import make_request

POLICIES = Path(__file__).parents[2] / "policies"
SHIPPED = load_policies(POLICIES)
TLS = "require-ingress-tls-in-production"
UNIQUE = "unique-ingress-hosts"
WILDCARD = "restrict-wildcard-ingress-hosts"
LEGITIMATE = 2000


def ingress(rules: int, *, name: str = "big", namespace: str = "payments",
            uncovered: int = 0, prefix: str = "h") -> dict[str, Any]:
    """An Ingress of ``rules`` hosts, each with one path, all but the first ``uncovered``
    listed under spec.tls."""
    hosts = [f"{prefix}{i}.shop.example.com" for i in range(rules)]
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
                       "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}
                      for host in hosts],
            "tls": [{"hosts": hosts[uncovered:], "secretName": "tls"}],
        },
    }


def judge(obj: dict[str, Any], cluster: MemoryCluster) -> Decision:
    return Engine(SHIPPED).evaluate(make_request("CREATE", obj), cluster)


@pytest.fixture
def cluster() -> MemoryCluster:
    return MemoryCluster([namespace(name="payments", labels={"environment": "production"}),
                          namespace(name="other")])


def test_the_shipped_set_judges_a_2000_rule_tls_ingress_within_the_budget(
    cluster: MemoryCluster,
) -> None:
    decision = judge(ingress(LEGITIMATE), cluster)
    assert decision.allowed, decision.deny_message()
    assert decision.errors == [] and decision.violations == []
    # Every policy that reads the rules judged them (none was skipped for its cost).
    assert {TLS, UNIQUE, WILDCARD} <= set(decision.matched_policies)
    assert 0 < decision.spent <= DEFAULT_BUDGET


def test_a_2000_rule_ingress_with_an_uncovered_host_is_denied_by_the_tls_policy(
    cluster: MemoryCluster,
) -> None:
    decision = judge(ingress(LEGITIMATE, uncovered=1), cluster)
    assert not decision.allowed
    (tls,) = [v for v in decision.violations if v.policy == TLS]
    assert tls.source is ViolationSource.VALIDATION
    # Its messageExpression fitted the budget too: it names the host.
    assert "h0.shop.example.com" in tls.message
    # The message is paid from the same budget, after the check: a policy judged later may
    # find too little left, and then fails closed (the request is denied either way).
    for other in decision.violations:
        if other is not tls:
            assert other.source is ViolationSource.ERROR
            assert "spent on other policies" in other.message
            policy = SHIPPED.get(other.policy)
            assert policy is not None and policy.failure_policy is FailurePolicy.FAIL


def test_a_2000_rule_ingress_taking_another_namespaces_host_is_denied_as_a_claim() -> None:
    held = ingress(1, name="theirs", namespace="other", prefix="h1999-")
    # The same host and path as the last rule of the big Ingress.
    held["spec"]["rules"][0]["host"] = f"h{LEGITIMATE - 1}.shop.example.com"
    cluster = MemoryCluster([namespace(name="payments", labels={"environment": "production"}),
                             namespace(name="other"), held])
    decision = judge(ingress(LEGITIMATE), cluster)
    assert not decision.allowed
    (violation,) = decision.violations
    assert violation.policy == UNIQUE and violation.source is not ViolationSource.ERROR
    assert f"h{LEGITIMATE - 1}.shop.example.com" in violation.message
    assert "evaluation budget" not in violation.message


def test_past_the_bound_the_policies_that_cannot_afford_it_fail_by_their_failure_policy(
    cluster: MemoryCluster,
) -> None:
    decision = judge(ingress(8000), cluster)
    assert not decision.allowed
    over = [v for v in decision.violations if v.source is ViolationSource.ERROR]
    assert over, decision.violations
    for violation in over:
        assert "object.spec.rules holds 8,000 items" in violation.message
        assert "evaluation budget of 50 ms" in violation.message
        policy = SHIPPED.get(violation.policy)
        assert policy is not None and policy.failure_policy is FailurePolicy.FAIL
    # No policy ran past the budget: what was judged was paid for within it.
    assert decision.spent <= DEFAULT_BUDGET
    # The policy that reads nothing large still judged the object.
    assert "require-ingress-class" in decision.matched_policies


def test_the_price_of_every_guarded_policy_is_linear_in_the_rules(
    cluster: MemoryCluster,
) -> None:
    # The closures append to one list in map and filter: no term grows with the square of
    # the input any more (the Rust binding's prices had one).
    guards = CompiledPolicies.compile(SHIPPED).guards
    priced = {name: guards[name] for name in (TLS, UNIQUE, WILDCARD)}

    def cost(guard: Guard, rules: int) -> float:
        return guard.cost({"object": ingress(rules), "oldObject": None, "request": {},
                           "namespaceObject": cluster.get_namespace("payments")})

    for name, guard in priced.items():
        small, large = cost(guard, 1000), cost(guard, 4000)
        assert 3.5 * small < large < 4.5 * small, name
