"""The internal-LB flavour is one setting for a whole installation, passed in by the caller."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import service
from webhook.cluster.memory import MemoryCluster
from webhook.errors import PolicyLoadError
from webhook.policy.engine.evaluation import Engine
from webhook.policy.load.loader import load_policies
from webhook.policy.model.policy import InternalLoadBalancer

from .conftest import make_request

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def flavour_of(policies) -> str:
    mutation = policies.get("internal-loadbalancer").mutations[0]
    assert isinstance(mutation, InternalLoadBalancer)
    return mutation.flavour


def test_the_shipped_policy_is_aws_as_written() -> None:
    assert flavour_of(load_policies(POLICIES)) == "aws"


def test_the_setting_overrides_the_flavour_of_every_policy() -> None:
    policies = load_policies(POLICIES, internal_lb_flavour="gcp")
    assert flavour_of(policies) == "gcp"
    decision = Engine(policies).evaluate(
        make_request("CREATE", service(name="lb", namespace="team", type="LoadBalancer")),
        MemoryCluster(),
    )
    assert decision.mutated_object["metadata"]["annotations"] == {
        "networking.gke.io/load-balancer-type": "Internal"
    }
    assert flavour_of(load_policies(POLICIES, internal_lb_flavour="azure")) == "azure"


def test_the_environment_does_not_reach_the_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI reads EDGEWARDEN_INTERNAL_LB_FLAVOUR at its edge; the loader takes arguments.
    monkeypatch.setenv("EDGEWARDEN_INTERNAL_LB_FLAVOUR", "gcp")
    assert flavour_of(load_policies(POLICIES)) == "aws"


def test_an_unknown_flavour_is_a_clear_error() -> None:
    with pytest.raises(PolicyLoadError, match="unknown flavour 'oracle'"):
        load_policies(POLICIES, internal_lb_flavour="oracle")
