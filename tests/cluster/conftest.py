"""Fixtures for the watch cache: a fake API server, a KubeCluster wired to it, counters."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from kubernetes import client

from webhook.cluster.kube import KubeCluster
from webhook.cluster.kube_informer import InformerSettings

from .fake_apiserver import FakeApiServer

FAST = InformerSettings(
    watch_timeout_seconds=10,
    connect_timeout=2.0,
    list_timeout=5.0,
    backoff_initial=0.02,
    backoff_max=0.2,
)


class TypeCounter:
    """Counts objects of ``kind`` whose ``spec.type`` is ``service_type`` (a policy's where)."""

    def __init__(self, service_type: str = "LoadBalancer", kind: str = "Service") -> None:
        self.service_type = service_type
        self._kind = kind

    @property
    def key(self) -> str:
        return f"{self._kind}:spec.type=={self.service_type}"

    @property
    def kind(self) -> str:
        return self._kind

    def counts(self, obj: Mapping[str, Any]) -> bool:
        return (obj.get("spec") or {}).get("type") == self.service_type


class IngressClassCounter:
    """Counts Ingresses of one ingressClassName."""

    def __init__(self, class_name: str) -> None:
        self.class_name = class_name

    @property
    def key(self) -> str:
        return f"Ingress:class=={self.class_name}"

    @property
    def kind(self) -> str:
        return "Ingress"

    def counts(self, obj: Mapping[str, Any]) -> bool:
        return (obj.get("spec") or {}).get("ingressClassName") == self.class_name


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def service(ns: str, name: str, service_type: str = "ClusterIP") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": ns,
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
        },
        "spec": {"type": service_type, "ports": [{"port": 80, "targetPort": 8080}]},
        "status": {"loadBalancer": {}},
    }


def ingress(ns: str, name: str, class_name: str = "nginx") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"ingressClassName": class_name, "rules": [{"host": f"{name}.example.com"}]},
    }


def eventually(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Poll ``predicate`` until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or predicate}")
        time.sleep(0.01)


@pytest.fixture
def apiserver() -> Iterator[FakeApiServer]:
    server = FakeApiServer().start()
    yield server
    server.stop()


def api_client_for(url: str) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = url
    return client.ApiClient(configuration)


@pytest.fixture
def make_cluster(apiserver: FakeApiServer) -> Iterator[Callable[..., KubeCluster]]:
    clusters: list[KubeCluster] = []

    def make(settings: InformerSettings = FAST, **kwargs: Any) -> KubeCluster:
        cluster = KubeCluster(api_client_for(apiserver.url), settings=settings, **kwargs)
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.stop()
