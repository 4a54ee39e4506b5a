from __future__ import annotations

import textwrap
from typing import Any

import pytest

from webhook.cluster.memory import MemoryCluster
from webhook.policy.engine import Engine
from webhook.policy.loader import load_policy_text
from webhook.policy.request import make_request


def engine_for(policy_yaml: str, *, force_audit: bool = False) -> Engine:
    return Engine(load_policy_text(textwrap.dedent(policy_yaml)), force_audit=force_audit)


def namespace(name: str, labels: dict[str, str] | None = None, **annotations: str) -> dict:
    metadata: dict[str, Any] = {"name": name}
    if labels is not None:
        metadata["labels"] = labels
    if annotations:
        metadata["annotations"] = {
            k.replace("__", "/").replace("_", "-"): v for k, v in annotations.items()
        }
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def service(name: str, ns: str, svc_type: str = "ClusterIP", **extra: Any) -> dict:
    metadata: dict[str, Any] = {"name": name, "namespace": ns}
    metadata.update(extra.pop("metadata", {}))
    spec = {"type": svc_type, "ports": [{"port": 80, "targetPort": 8080}], **extra}
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


@pytest.fixture
def production_cluster() -> MemoryCluster:
    return MemoryCluster(
        [
            namespace("payments", {"environment": "production"}),
            namespace("shop", {"environment": "prod"}),
            namespace("dev", {"environment": "development"}),
            namespace("bare"),
        ]
    )


__all__ = ["engine_for", "make_request", "namespace", "service"]
