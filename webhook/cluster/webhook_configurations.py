"""The API calls of webhook registration and of ``edgewarden uninstall``, as plain dicts.

Raw REST paths through the ``kubernetes`` client's ApiClient: what is read is what the API
server sent, and what is written is what edgewarden built (no client models in between).
Every failure is a :class:`KubeCallError` with the HTTP status (0: not reached) and a one-line
message, never a response body.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from webhook.errors import ClusterStateError, one_line

WebhookKind = Literal["validating", "mutating"]
ADMISSION = "/apis/admissionregistration.k8s.io/v1"
PATHS: dict[WebhookKind, str] = {
    "validating": f"{ADMISSION}/validatingwebhookconfigurations",
    "mutating": f"{ADMISSION}/mutatingwebhookconfigurations",
}
KINDS: dict[WebhookKind, str] = {
    "validating": "ValidatingWebhookConfiguration",
    "mutating": "MutatingWebhookConfiguration",
}
MERGE_PATCH = "application/merge-patch+json"
TIMEOUT = (10.0, 30.0)  # connect, read


class KubeCallError(ClusterStateError):
    """A call the API server refused (``status``), or that did not reach it (0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class RestApi:
    """GET/POST/PUT/PATCH/DELETE on API paths, JSON in and out."""

    def __init__(self, api_client: Any | None = None) -> None:
        if api_client is None:
            from webhook.cluster.connection import api_client_from_environment

            api_client = api_client_from_environment()
        self._client = api_client

    def call(self, method: str, path: str, *, body: dict[str, Any] | None = None,
             query: dict[str, str] | None = None, content_type: str = "application/json",
             ) -> dict[str, Any] | None:
        """The JSON answer; None for a 404."""
        from urllib3.exceptions import HTTPError

        try:
            verb, url, headers, payload, form = self._client.param_serialize(
                method, path, query_params=list((query or {}).items()),
                header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body, auth_settings=["BearerToken"])
            response = self._client.call_api(verb, url, headers, payload, form,
                                             _request_timeout=TIMEOUT)
            data = response.read()
        except (OSError, HTTPError) as error:
            raise KubeCallError(0, f"cannot reach the API server: {one_line(error)}") from None
        if response.status == 404:
            return None
        if not 200 <= response.status <= 299:
            raise KubeCallError(response.status,
                                f"{method} {path}: HTTP {response.status} {response.reason}"
                                f"{_status_message(data)}")
        found: dict[str, Any] = json.loads(data) if data else {}
        return found

    def list(self, path: str, label_selector: str) -> list[dict[str, Any]]:
        """Every object at ``path`` with the labels, page by page; [] when the kind is not
        served (a CRD not installed)."""
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            query = {"labelSelector": label_selector, "limit": "500"}
            if token:
                query["continue"] = token
            page = self.call("GET", path, query=query)
            if page is None:
                return items
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return items


class WebhookConfigurationApi:
    """Edgewarden's two webhook configurations, and the Service they point at."""

    def __init__(self, rest: RestApi | None = None) -> None:
        self.rest = rest or RestApi()

    def get(self, kind: WebhookKind, name: str) -> dict[str, Any] | None:
        return self.rest.call("GET", f"{PATHS[kind]}/{name}")

    def create(self, kind: WebhookKind, body: dict[str, Any]) -> dict[str, Any] | None:
        """The created object; None when one of that name appeared meanwhile (409)."""
        try:
            return self.rest.call("POST", PATHS[kind], body=body)
        except KubeCallError as error:
            if error.status == 409:
                return None
            raise

    def replace(self, kind: WebhookKind, body: dict[str, Any]) -> dict[str, Any] | None:
        """Conditional on ``metadata.resourceVersion``: None when the object changed (409)
        or went (404) since it was read; the caller reads again."""
        try:
            return self.rest.call("PUT", f"{PATHS[kind]}/{body['metadata']['name']}", body=body)
        except KubeCallError as error:
            if error.status == 409:
                return None
            raise

    def delete(self, kind: WebhookKind, name: str, uid: str | None = None) -> bool:
        """Delete (only the object with ``uid``, when given); False when there was none."""
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        try:
            return self.rest.call("DELETE", f"{PATHS[kind]}/{name}", body=body) is not None
        except KubeCallError as error:
            if error.status == 409:  # another object of that name now: not ours to delete
                return False
            raise

    def service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.rest.call("GET", f"/api/v1/namespaces/{namespace}/services/{name}")

    def annotate_service(self, namespace: str, name: str, annotations: dict[str, str]) -> bool:
        """Merge ``annotations`` into the Service; False when there is no such Service."""
        found = self.rest.call("PATCH", f"/api/v1/namespaces/{namespace}/services/{name}",
                               body={"metadata": {"annotations": annotations}},
                               content_type=MERGE_PATCH)
        return found is not None


def _status_message(body: Any) -> str:
    """The Status message the API server sent (never a whole body)."""
    try:
        message = json.loads(body or "{}").get("message")
    except (ValueError, AttributeError, TypeError):
        return ""
    return f": {str(message)[:300]}" if message else ""
