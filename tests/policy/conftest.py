"""Engines built from policy YAML, and a cluster of labelled namespaces."""

from __future__ import annotations

import pytest

from tests.support import namespace, policies_from_yaml
from webhook.cluster.memory import MemoryCluster
from webhook.policy.engine.evaluation import Engine
from webhook.policy.model.request import make_request


def engine_for(policy_yaml: str, *, force_audit: bool = False) -> Engine:
    return Engine(policies_from_yaml(policy_yaml), force_audit=force_audit)


@pytest.fixture
def production_cluster() -> MemoryCluster:
    return MemoryCluster(
        [
            namespace(name="payments", labels={"environment": "production"}),
            namespace(name="shop", labels={"environment": "prod"}),
            namespace(name="dev", labels={"environment": "development"}),
            namespace(name="bare"),
        ]
    )


__all__ = ["engine_for", "make_request"]
