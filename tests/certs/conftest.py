"""Fixtures for certificate tests: a hand-built policy set and the Kubernetes API double."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from webhook.certs.store import KubernetesCertStore
from webhook.certs.webhookconfig import WebhookSettings, render
from webhook.policy.decision import FailurePolicy, Mode
from webhook.policy.model import InternalLoadBalancer, Limit, Match, Policy, PolicySet

from .fake_kube_api import FakeKubeAPI, running


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
def kube() -> Iterator[FakeKubeAPI]:
    """The API double, holding both webhook configurations as `kubectl apply` left them
    (no caBundle yet)."""
    api = FakeKubeAPI()
    for document in render(service_and_ingress_policies(), WebhookSettings()):
        api.add_webhook_configuration(document)
    with running(api):
        yield api


@pytest.fixture()
def store(kube: FakeKubeAPI) -> Iterator[KubernetesCertStore]:
    api_client = client.ApiClient(client.Configuration(host=kube.url))
    try:
        yield KubernetesCertStore(api_client)
    finally:
        api_client.close()
