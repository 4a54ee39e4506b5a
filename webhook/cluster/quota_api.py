"""The ResourceQuotas of one name and owner label, read and written as plain dicts (core/v1,
so not ObjectApi): what ``serve --manage-quotas`` keeps equal to the LoadBalancer caps."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from webhook.cluster.object_api import call_api


class QuotaApi:
    """The quotas named ``name`` that carry the ``owned`` label selector, in any namespace."""

    def __init__(self, api: client.ApiClient, *, name: str, owned: str) -> None:
        self._core = client.CoreV1Api(api)
        self._name = name
        self._owned = owned

    def owned(self) -> dict[str, dict[str, Any]]:
        """namespace -> our quota there (by name and label)."""
        body = call_api(self._core.list_resource_quota_for_all_namespaces,
                        label_selector=self._owned)
        return {item["metadata"]["namespace"]: item for item in body.get("items") or []
                if item["metadata"].get("name") == self._name}

    def create(self, namespace: str, body: dict[str, Any]) -> None:
        call_api(self._core.create_namespaced_resource_quota, namespace, body)

    def replace(self, namespace: str, body: dict[str, Any]) -> None:
        call_api(self._core.replace_namespaced_resource_quota, self._name, namespace, body)

    def delete(self, namespace: str) -> None:
        call_api(self._core.delete_namespaced_resource_quota, self._name, namespace)
