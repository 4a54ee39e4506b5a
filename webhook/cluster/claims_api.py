"""The Claim objects of edgewarden's namespace through the ``kubernetes`` client, as plain
dicts (webhook/cluster/claims.py says what they hold).

Its own ApiClient with a connection pool as large as the threads that take claims, so
concurrent admissions never wait for (or throw away) a connection.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from webhook.cluster.claims import GROUP, PLURAL, VERSION, ClaimConflict, ClaimUnavailable
from webhook.errors import one_line

# An admission waits for its claim: well under the API server's webhook timeout.
TIMEOUT = (2.0, 4.0)  # connect, read


class KubeClaimStore:
    """A ClaimStore over the API server."""

    def __init__(self, api: client.ApiClient, namespace: str, *, pool_size: int = 32) -> None:
        configuration = copy.copy(api.configuration)
        configuration.connection_pool_maxsize = pool_size
        self._custom = client.CustomObjectsApi(client.ApiClient(configuration))
        self.namespace = namespace

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self._call(self._custom.get_namespaced_custom_object,
                                               GROUP, VERSION, self.namespace, PLURAL, name)
        except _NotFound:
            return None
        return found

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self._call(self._custom.create_namespaced_custom_object,
                                             GROUP, VERSION, self.namespace, PLURAL, body)
        return created

    def replace(self, body: dict[str, Any]) -> dict[str, Any]:
        replaced: dict[str, Any] = self._call(self._custom.replace_namespaced_custom_object,
                                              GROUP, VERSION, self.namespace, PLURAL,
                                              body["metadata"]["name"], body)
        return replaced

    def delete(self, name: str, resource_version: str) -> None:
        try:
            self._call(self._custom.delete_namespaced_custom_object, GROUP, VERSION,
                       self.namespace, PLURAL, name,
                       body={"preconditions": {"resourceVersion": resource_version}})
        except _NotFound:
            return

    def list(self, label_selector: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            body = self._call(self._custom.list_namespaced_custom_object, GROUP, VERSION,
                              self.namespace, PLURAL, label_selector=label_selector,
                              limit=500, _continue=token)
            items.extend(body.get("items") or [])
            token = (body.get("metadata") or {}).get("continue") or None
            if token is None:
                return items

    def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            response = function(*args, _preload_content=False, _request_timeout=TIMEOUT,
                                **kwargs)
        except ApiException as error:
            if error.status == 409:
                raise ClaimConflict(_message(error)) from None
            if error.status == 404 and _object_missing(error):
                raise _NotFound from None
            raise ClaimUnavailable(_describe(error)) from None
        except (OSError, TransportError) as error:
            raise ClaimUnavailable(f"cannot reach the API server: {one_line(error)}") from None
        data = response.data
        return json.loads(data) if data else None


class _NotFound(Exception):
    pass


def _object_missing(error: ApiException) -> bool:
    """A 404 for a Claim object that is not there, not for the kind (no CRD) or the
    namespace: the API server names the object as ``claims.edgewarden.dev "NAME"``."""
    return f'{PLURAL}.{GROUP} "' in _message(error)


def _message(error: ApiException) -> str:
    try:
        message = json.loads(error.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return f"HTTP {error.status} {error.reason}" + (f": {message[:300]}" if message else "")


def _describe(error: ApiException) -> str:
    """One line an operator can act on: the CRD missing and RBAC are the usual causes."""
    if error.status == 404 and 'namespaces "' in _message(error):
        return ("edgewarden's namespace, where Claim objects live, does not exist (create "
                "it, or point serve at its namespace with --leader-election-namespace)")
    if error.status == 404:
        return ("the Claim CRD is not installed (claims.edgewarden.dev: apply "
                "deploy/crds/edgewarden.dev_claims.yaml)")
    if error.status == 403:
        return ("edgewarden's ServiceAccount may not read or write Claim objects in its "
                "namespace (see deploy/base/rbac.yaml)")
    return _message(error)
