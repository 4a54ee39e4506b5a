"""Gateway API through the API server: the CRDs of the pinned release are installed, the
webhook configuration sends HTTPRoutes, and unique-ingress-hosts refuses a host another
namespace already serves, exactly, even when two namespaces race for it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client, config

from .helpers import Cluster, NamespaceFactory, Refusal, eventually, ingress, refusal
from .installation import Installation

GROUP, VERSION = "gateway.networking.k8s.io", "v1"
POLICY = "unique-ingress-hosts"


def httproute(name: str, hostnames: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [{"name": "public"}],
            "hostnames": hostnames,
            "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
        },
    }


def route_creator(api: client.ApiClient, namespace: str,
                  dry_run: bool = False) -> Callable[[dict[str, Any]], Any]:
    custom = client.CustomObjectsApi(api)
    extra = {"dry_run": "All"} if dry_run else {}
    return lambda body: custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "httproutes", body, **extra)


def refused_once_seen(cluster: Cluster, namespace: str, host: str, what: str) -> Refusal:
    """The webhook learns of the owner from its watch, a moment after the API server: a
    dry run (judged, stored nowhere) until it is refused, then the real CREATE."""
    create = route_creator(cluster.api, namespace, dry_run=True)
    eventually(lambda: refusal(lambda: create(httproute("steal", [host]))), what)
    answer = refusal(lambda: route_creator(cluster.api, namespace)(httproute("steal", [host])))
    assert answer is not None, "the HTTPRoute was created"
    return answer


def unique_host() -> str:
    return f"shop-{uuid.uuid4().hex[:8]}.example.com"


def test_the_webhook_configuration_sends_httproutes(cluster: Cluster) -> None:
    configuration = cluster.admission.read_validating_webhook_configuration(
        "edgewarden-validating")
    rules = [(rule.api_groups, rule.resources) for hook in configuration.webhooks
             for rule in hook.rules]
    assert ([GROUP], ["httproutes"]) in rules


def test_an_httproute_for_a_host_an_ingress_in_another_namespace_serves_is_refused(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    owner, other = namespace({"team": "shop"}), namespace({"team": "other"})
    host = unique_host()
    cluster.networking.create_namespaced_ingress(owner, ingress("front", host))

    answer = refused_once_seen(cluster, other, host,
                               "the webhook refusing the host the Ingress serves")
    assert answer.status == 403
    assert POLICY in answer.message
    # "HOST/" once the API server defaults the route's matches (PathPrefix /), else
    # "HOST (whole host)": the same place either way.
    assert host in answer.message
    assert f"is held by Ingress {owner}/front" in answer.message
    # The namespace that serves the host may route it further.
    assert refusal(lambda: route_creator(cluster.api, owner)(httproute("more", [host]))) is None


def test_an_httproute_for_a_host_an_httproute_in_another_namespace_serves_is_refused(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    owner, other = namespace({"team": "shop"}), namespace({"team": "other"})
    host = unique_host()
    assert refusal(lambda: route_creator(cluster.api, owner)(httproute("front", [host]))) \
        is None
    answer = refused_once_seen(cluster, other, host,
                               "the webhook refusing the host the HTTPRoute serves")
    assert answer.status == 403
    assert host in answer.message
    assert f"is held by HTTPRoute {owner}/front" in answer.message


def test_two_namespaces_creating_one_host_at_once_leave_exactly_one_owner(
    installation: Installation, cluster: Cluster, namespace: NamespaceFactory
) -> None:
    contenders = [namespace({"team": f"team-{i}"}) for i in range(4)]
    host = unique_host()
    api = config.new_client_from_config(config_file=str(installation.kubeconfig))
    api.configuration.connection_pool_maxsize = len(contenders)
    start = threading.Barrier(len(contenders))

    def create(ns: str) -> Refusal | None:
        start.wait()
        return refusal(lambda: route_creator(api, ns)(httproute("route", [host])))

    with ThreadPoolExecutor(len(contenders)) as pool:
        answers = dict(zip(contenders, pool.map(create, contenders), strict=True))
    winners = [ns for ns, answer in answers.items() if answer is None]
    assert len(winners) == 1, answers
    losers = [a for a in answers.values() if a is not None]
    assert all(a.status == 403 and POLICY in a.message for a in losers), losers
    custom = client.CustomObjectsApi(cluster.api)
    owners = [ns for ns in contenders
              if custom.list_namespaced_custom_object(GROUP, VERSION, ns, "httproutes")["items"]]
    assert owners == winners
