"""The internal-LB flavour is one setting for a whole installation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import service
from webhook.cluster.memory import MemoryCluster
from webhook.errors import PolicyLoadError
from webhook.policy.engine import Engine
from webhook.policy.loader import AS_WRITTEN, FLAVOUR_ENVIRONMENT, load_policies
from webhook.policy.model import InternalLoadBalancer

from .conftest import make_request

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def flavour_of(policies) -> str:
    mutation = policies.get("internal-loadbalancer").mutations[0]
    assert isinstance(mutation, InternalLoadBalancer)
    return mutation.flavour


def test_the_shipped_policy_is_aws_as_written(monkeypatch) -> None:
    monkeypatch.delenv(FLAVOUR_ENVIRONMENT, raising=False)
    assert flavour_of(load_policies(POLICIES)) == "aws"


def test_the_setting_overrides_the_flavour_of_every_policy(monkeypatch) -> None:
    monkeypatch.setenv(FLAVOUR_ENVIRONMENT, "gcp")
    policies = load_policies(POLICIES)
    assert flavour_of(policies) == "gcp"
    decision = Engine(policies).evaluate(
        make_request("CREATE", service(name="lb", namespace="team", type="LoadBalancer")),
        MemoryCluster(),
    )
    assert decision.mutated_object["metadata"]["annotations"] == {
        "networking.gke.io/load-balancer-type": "Internal"
    }
    assert flavour_of(load_policies(POLICIES, internal_lb_flavour="azure")) == "azure"
    assert flavour_of(load_policies(POLICIES, internal_lb_flavour=AS_WRITTEN)) == "aws"


def test_an_unknown_flavour_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv(FLAVOUR_ENVIRONMENT, "oracle")
    with pytest.raises(PolicyLoadError, match="unknown flavour 'oracle'"):
        load_policies(POLICIES)
