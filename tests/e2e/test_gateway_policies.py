"""The Gateway API policies in a real cluster: the API server sends Gateways to the webhook
(the webhook configuration's rules name them) and a plain-HTTP listener in a production
namespace is refused with the policy's message, while HTTPS with the port-80 redirect
listener is admitted."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .helpers import Cluster, NamespaceFactory, refusal

pytestmark = pytest.mark.deployed("enforce")

GROUP, VERSION = "gateway.networking.k8s.io", "v1"


@pytest.fixture
def gateways(cluster: Cluster) -> client.CustomObjectsApi:
    """The Gateway API, when this control plane has its CRDs."""
    try:
        client.ApiextensionsV1Api(cluster.api).read_custom_resource_definition(
            f"gateways.{GROUP}")
    except ApiException as error:
        if error.status == 404:
            pytest.skip("this control plane has no Gateway API CRDs (installed by the "
                        "e2e fixture with issue 12's core work)")
        raise
    return client.CustomObjectsApi(cluster.api)


def _gateway(name: str, listeners: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Gateway",
        "metadata": {"name": name},
        "spec": {"gatewayClassName": "example", "listeners": listeners},
    }


def _create(api: client.CustomObjectsApi, namespace: str, body: dict[str, Any]) -> Any:
    return api.create_namespaced_custom_object(GROUP, VERSION, namespace, "gateways", body)


def test_plain_http_gateway_listener_in_production_is_refused(
    cluster: Cluster, gateways: client.CustomObjectsApi, namespace: NamespaceFactory
) -> None:
    ns = namespace()  # environment=production
    plain = _gateway("public", [{"name": "web", "protocol": "HTTP", "port": 8080}])
    answer = refusal(lambda: _create(gateways, ns, plain))
    assert answer is not None, "a Gateway with a plain-HTTP listener was created in production"
    assert answer.status == 403
    assert "gateway-https-in-production" in answer.message
    assert "listener web with protocol HTTP on port 8080" in answer.message
    listed = gateways.list_namespaced_custom_object(GROUP, VERSION, ns, "gateways")
    assert [g["metadata"]["name"] for g in listed["items"]] == []


def test_https_gateway_with_the_redirect_listener_is_admitted_in_production(
    cluster: Cluster, gateways: client.CustomObjectsApi, namespace: NamespaceFactory
) -> None:
    ns = namespace()
    body = _gateway("public", [
        {"name": "https", "protocol": "HTTPS", "port": 443,
         "tls": {"mode": "Terminate", "certificateRefs": [{"name": "shop-tls"}]}},
        {"name": "http", "protocol": "HTTP", "port": 80,
         "allowedRoutes": {"namespaces": {"from": "Same"}, "kinds": [{"kind": "HTTPRoute"}]}},
    ])
    created = _create(gateways, ns, body)
    assert [listener["name"] for listener in created["spec"]["listeners"]] == ["https", "http"]
