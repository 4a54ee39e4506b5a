"""Fixtures for certificate tests: a hand-built policy set and the Kubernetes API double."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kubeapi import KubeApi
from tests.support import api_client
from webhook.cluster.cert_store import KubernetesCertStore
from webhook.policy.model.decision import FailurePolicy, Mode
from webhook.policy.model.policy import InternalLoadBalancer, Limit, Match, Policy, PolicySet
from webhook.registration.render import WebhookSettings, render


def service_and_ingress_policies() -> PolicySet:
    """A validating Service policy, a validating Ingress policy, a mutating Service policy."""
    return PolicySet(
        (
            Policy(
                name="limit-loadbalancers-per-namespace",
                description="",
                mode=Mode.ENFORCE,
                failure_policy=FailurePolicy.FAIL,
                match=Match(
                    kinds=frozenset({"Service"}), operations=frozenset({"CREATE", "UPDATE"})
                ),
                limit=Limit(where=None, max=2, max_expression=None, message=None),
            ),
            Policy(
                name="require-ingress-class",
                description="",
                mode=Mode.WARN,
                failure_policy=FailurePolicy.FAIL,
                match=Match(kinds=frozenset({"Ingress"}), operations=frozenset({"CREATE"})),
                limit=Limit(where=None, max=5, max_expression=None, message=None),
            ),
            Policy(
                name="internal-loadbalancer",
                description="",
                mode=Mode.ENFORCE,
                failure_policy=FailurePolicy.FAIL,
                match=Match(
                    kinds=frozenset({"Service"}), operations=frozenset({"CREATE", "UPDATE"})
                ),
                mutations=(InternalLoadBalancer("aws"),),
            ),
        )
    )


@pytest.fixture()
def policies() -> PolicySet:
    return service_and_ingress_policies()


@pytest.fixture()
def kube_api(kube_api: KubeApi) -> KubeApi:
    """The API double (of the root conftest), here holding both webhook configurations as
    `kubectl apply` left them (no caBundle yet)."""
    for document in render(service_and_ingress_policies(), WebhookSettings()):
        kube_api.create(document)
    return kube_api


@pytest.fixture()
def store(kubeconfig: Path) -> Iterator[KubernetesCertStore]:
    """The certificate store of the product, talking to ``kube_api``."""
    with api_client(kubeconfig) as client:
        yield KubernetesCertStore(client)
