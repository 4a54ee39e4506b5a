"""A shadow set stays within one admission's cost budget, which the enforced set gets first:
the candidates are judged with what the enforced set left, and one that does not fit fails
to evaluate (counted as its ``error``) while the answer stands (docs/shadow.md)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tests.support import namespace
from webhook.admission.loaded import EvaluationBudget, LoadedPolicies
from webhook.admission.metrics import Metrics
from webhook.admission.shadow import judge
from webhook.cluster.memory import MemoryCluster
from webhook.policy.engine.evaluation import Engine
from webhook.policy.load.loader import load_policies
from webhook.policy.model.exceptions import NO_EXCEPTIONS
from webhook.policy.model.policy import PolicySet
from webhook.policy.model.request import make_request

POLICIES = Path(__file__).parents[2] / "policies"
TLS = "require-ingress-tls-in-production"
CANDIDATE = "tls-candidate"


def _tls_policies() -> tuple[PolicySet, PolicySet]:
    """The shipped TLS policy, and the same policy under another name as the candidate."""
    shipped = load_policies(POLICIES / f"{TLS}.yaml")
    (policy,) = shipped.policies
    return shipped, PolicySet((dataclasses.replace(policy, name=CANDIDATE),))


def _ingress(rules: int) -> dict[str, Any]:
    hosts = [f"h{i}.shop.example.com" for i in range(rules)]
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "big", "namespace": "payments"},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
                       "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}
                      for host in hosts],
            "tls": [{"hosts": hosts, "secretName": "tls"}],
        },
    }


def _shadow_results(metrics: Metrics, result: str) -> float:
    value = metrics.registry.get_sample_value(
        "edgewarden_shadow_decisions_total", {"policy": CANDIDATE, "result": result})
    return value or 0.0


def test_the_candidate_gets_what_the_enforced_set_left_of_the_budget() -> None:
    enforced, candidate = _tls_policies()
    cluster = MemoryCluster([namespace(name="payments", labels={"environment": "production"})])
    request = make_request("CREATE", _ingress(600))
    # What judging this Ingress costs the TLS policy (it is costed: over 100 rules).
    cost = Engine(enforced).evaluate(request, cluster).spent
    assert cost > 0
    # A budget for the enforced policy and half of it again: not for both.
    budget = EvaluationBudget(budget_ms=cost * 1.5 / 1000)
    loaded = LoadedPolicies.build(enforced, dry_run=False, budget=budget, shadow=candidate)
    assert loaded.shadow is not None

    decision = loaded.engine.evaluate(request, cluster)
    assert decision.allowed and not decision.errors, "the enforced set is judged in full"
    metrics = Metrics()
    found = judge(loaded.shadow, "validate", request, decision, loaded.declared_modes,
                  cluster=cluster, exceptions=NO_EXCEPTIONS,
                  started=None, metrics=metrics)

    (difference,) = found
    assert difference.shadow.result == "error" and difference.enforced.result == "allow"
    assert "evaluation budget" in difference.shadow.message
    assert _shadow_results(metrics, "error") == 1
    assert decision.allowed, "the answer is what the enforced set decided"

    # With no enforced policy spending any of it first, the candidate fits the same budget
    # and is judged (the Ingress is covered by TLS: it allows it, as the enforced one did).
    dev = make_request("CREATE", {**_ingress(600), "metadata": {"name": "big",
                                                               "namespace": "dev"}})
    cluster.add(namespace(name="dev", labels={"environment": "production"}))
    quiet = LoadedPolicies.build(PolicySet(()), dry_run=False, budget=budget, shadow=candidate)
    assert quiet.shadow is not None
    nothing = quiet.engine.evaluate(dev, cluster)
    assert judge(quiet.shadow, "validate", dev, nothing, quiet.declared_modes,
                 cluster=cluster, exceptions=NO_EXCEPTIONS, started=None, metrics=metrics) == []
    assert _shadow_results(metrics, "allow") == 1
