"""Reading and writing one kind of object as plain dicts (the kubernetes client's generic
custom-object calls, which serve built-in kinds such as Lease just as well).

Plain dicts, never the client's models: what is read is what the API server sent, and
what is written is what we built, with no client-side renaming or validation between.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from webhook.cluster.kube_kinds import list_function
from webhook.errors import one_line
from webhook.policy.model.kinds import KindRef

MERGE_PATCH = "application/merge-patch+json"
TIMEOUT = (10.0, 30.0)  # connect, read


class ApiFailure(Exception):
    """A call the API server refused or that did not reach it; ``status`` 0 for the latter."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


@dataclass(frozen=True)
class ObjectApi:
    api: client.ApiClient
    kind: KindRef

    @property
    def _custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def _target(self, namespace: str | None) -> tuple[Any, ...]:
        kind = self.kind
        if kind.namespaced:
            return (kind.group, kind.version, namespace, kind.resource)
        return (kind.group, kind.version, kind.resource)

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        scope = "namespaced" if self.kind.namespaced else "cluster"
        return call_api(getattr(self._custom, method.format(scope=scope)), *args, **kwargs)

    def get(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        found: dict[str, Any] = self._call("get_{scope}_custom_object",
                                           *self._target(namespace), name)
        return found

    def list(self, *, label_selector: str = "") -> list[dict[str, Any]]:
        """Every object of the kind (cluster-wide), each with its kind and apiVersion."""
        kind = self.kind
        list_all = list_function(self.api, kind)
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            body = call_api(list_all, label_selector=label_selector, limit=500,
                            _continue=token)
            for item in body.get("items") or []:
                items.append({"apiVersion": kind.api_version, "kind": kind.kind, **item})
            token = (body.get("metadata") or {}).get("continue") or None
            if token is None:
                return items

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        namespace = (body.get("metadata") or {}).get("namespace")
        created: dict[str, Any] = self._call("create_{scope}_custom_object",
                                             *self._target(namespace), body)
        return created

    def replace(self, body: dict[str, Any]) -> dict[str, Any]:
        """A conditional write when ``body`` carries a resourceVersion (409 otherwise)."""
        metadata = body.get("metadata") or {}
        replaced: dict[str, Any] = self._call("replace_{scope}_custom_object",
                                              *self._target(metadata.get("namespace")),
                                              metadata["name"], body)
        return replaced

    def patch_status(self, name: str, status: dict[str, Any],
                     namespace: str | None = None) -> None:
        self._call("patch_{scope}_custom_object_status", *self._target(namespace), name,
                   {"status": status}, _content_type=MERGE_PATCH)

    def delete(self, name: str, namespace: str | None = None) -> None:
        self._call("delete_{scope}_custom_object", *self._target(namespace), name)


def call_api(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a ``kubernetes`` client API function for its JSON body as plain data; every
    failure, reaching the API server or refused by it, is an ApiFailure."""
    try:
        response = function(*args, _preload_content=False, _request_timeout=TIMEOUT, **kwargs)
    except ApiException as error:
        raise ApiFailure(error.status or 0, _message(error)) from None
    except (OSError, TransportError) as error:
        # Refused, reset, TLS, or urllib3's ProtocolError for a connection cut mid-answer
        # (neither an ApiException nor an OSError): the API server is not reachable.
        raise ApiFailure(0, f"cannot reach the API server: {one_line(error)}") from None
    data = response.data
    return json.loads(data) if data else None


def _message(error: ApiException) -> str:
    """The Status message the API server sent, else the HTTP reason (never a whole body)."""
    try:
        message = json.loads(error.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return f"HTTP {error.status} {error.reason}" + (f": {message[:500]}" if message else "")
