"""Fixtures for the watch cache: a KubeCluster wired to the API double, counters."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.kubeconfig import api_client
from webhook.cluster.kube import KubeCluster
from webhook.cluster.kube_informer import InformerSettings

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


@pytest.fixture
def make_cluster(kubeconfig: Path) -> Iterator[Callable[..., KubeCluster]]:
    """KubeClusters reading the API double (``kube_api``), stopped after the test."""
    clusters: list[KubeCluster] = []

    def make(settings: InformerSettings = FAST, **kwargs: Any) -> KubeCluster:
        cluster = KubeCluster(api_client(kubeconfig), settings=settings, **kwargs)
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.stop()
