"""Fixtures for the watch cache: a KubeCluster wired to the API double, counters."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class SpecCounter:
    """Counts objects of ``kind`` whose ``spec.<field>`` is ``value`` (a policy's where)."""

    kind: str
    field: str
    value: str

    @property
    def key(self) -> str:
        return f"{self.kind}:spec.{self.field}=={self.value}"

    def counts(self, obj: Mapping[str, Any]) -> bool:
        return (obj.get("spec") or {}).get(self.field) == self.value


def services_of_type(service_type: str) -> SpecCounter:
    return SpecCounter("Service", "type", service_type)


def ingresses_of_class(class_name: str) -> SpecCounter:
    return SpecCounter("Ingress", "ingressClassName", class_name)


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
