"""How the ``kubernetes`` client lists (and watches) any kind cluster-wide.

A kind whose CRD is not installed is not an error: there are no such objects. Its LIST is
answered as empty (so the informer counts as synced and admissions are not held up), and
its WATCH as expired, so the informer lists again after its back-off and picks the kind up
once the CRD is installed. Gateway API kinds in a cluster without Gateway API are the
common case; edgewarden's own Policy and PolicyException kinds another.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from webhook.cluster.kube_informer import HTTP_GONE, KIND_NOT_SERVED, Resource
from webhook.errors import ClusterStateError
from webhook.policy.model.kinds import KindRef

log = logging.getLogger("edgewarden.cluster")

HTTP_NOT_FOUND = 404
PAGE_SIZE = 500
MAX_PAGES = 10_000  # bounds the paging loop (5 million objects)
REQUEST_TIMEOUT_SECONDS = 60


# The keyword arguments of the generated client's list functions, as query parameters.
_QUERY_PARAMETERS = {
    "limit": "limit",
    "_continue": "continue",
    "watch": "watch",
    "resource_version": "resourceVersion",
    "allow_watch_bookmarks": "allowWatchBookmarks",
    "timeout_seconds": "timeoutSeconds",
    "label_selector": "labelSelector",
    "field_selector": "fieldSelector",
}


class CollectionRequest:
    """The cluster-wide list (and watch) of one kind: a GET of its collection's path,
    answered with the unread response, as the generated client's list functions answer
    with ``_preload_content=False`` (the only way edgewarden calls them).

    Why not those functions: the client's CoreV1Api module takes most of a second to import
    (a pydantic-validated signature for each of its hundreds of operations), on the way
    from ``serve``'s start to its first LIST; and each call validates its arguments again.
    Paths, authentication, TLS and errors are the client's own (ApiClient)."""

    def __init__(self, api: client.ApiClient, ref: KindRef) -> None:
        self._api = api
        prefix = f"/apis/{ref.group}/{ref.version}" if ref.group else f"/api/{ref.version}"
        # /apis/<group>/<version>/<plural> lists a namespaced kind in every namespace too.
        self.path = f"{prefix}/{ref.resource}"

    def __call__(self, *, _preload_content: bool = False, _request_timeout: Any = None,
                 **parameters: Any) -> Any:
        if _preload_content:
            raise ValueError("a collection is only read as a stream (_preload_content=False)")
        query = [(_QUERY_PARAMETERS[name], value) for name, value in parameters.items()
                 if value is not None]
        request = self._api.param_serialize(
            method="GET", resource_path=self.path, query_params=query,
            header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
        response = self._api.call_api(*request, _request_timeout=_request_timeout)
        if not 200 <= response.status <= 299:
            response.read()
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response.response


def list_function(api: client.ApiClient, ref: KindRef) -> Callable[..., Any]:
    """The cluster-wide list (and watch) of ``ref``, as the informer calls it."""
    return CollectionRequest(api, ref)


def kind_resource(api: client.ApiClient, ref: KindRef, *, key: str = "") -> Resource:
    """An informer Resource for ``ref``, filed under ``key`` (by default the kind's key); a
    missing CRD is no objects."""
    label = f"{ref.kind} ({ref.resource}.{ref.group or 'core'})"
    return Resource(ref, AbsentIsEmpty(label, list_function(api, ref)), key)


class KindAbsent(Exception):
    """The API server does not serve the kind (its CRD is not installed)."""


def list_objects(api: client.ApiClient, ref: KindRef, *, needs: str,
                 absent_is_empty: bool = False) -> Iterator[dict[str, Any]]:
    """Every object of ``ref``, one paged LIST, as the API server sent them (items carry
    no kind or apiVersion). A refusal is a ClusterStateError naming ``needs``, the
    permissions the caller lacks; a 404 is :class:`KindAbsent` when ``absent_is_empty``."""
    kind, list_func = ref.kind, list_function(api, ref)
    token: str | None = None
    for _ in range(MAX_PAGES):
        try:
            response = list_func(
                limit=PAGE_SIZE,
                _continue=token,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
            body = json.loads(response.data)
        except ApiException as error:
            if absent_is_empty and error.status == 404:
                raise KindAbsent() from None
            raise ClusterStateError(
                f"listing {kind} objects failed: HTTP {error.status} {error.reason}"
                + (
                    f" (the audit needs list on {needs})"
                    if error.status in (401, 403)
                    else ""
                )
            ) from None
        except (OSError, ValueError) as error:  # connection refused, TLS, bad JSON
            raise ClusterStateError(f"listing {kind} objects failed: {error}") from None
        yield from body.get("items") or []
        token = (body.get("metadata") or {}).get("continue")
        if not token:
            return
    raise ClusterStateError(f"listing {kind} objects did not end after {MAX_PAGES} pages")


class AbsentIsEmpty:
    """A list function that answers a 404 (no such resource) as an empty LIST."""

    def __init__(self, label: str, list_func: Callable[..., Any]) -> None:
        self._label = label
        self._list = list_func
        self._warned = threading.Event()

    def __call__(self, **kwargs: Any) -> Any:
        try:
            response = self._list(**kwargs)
        except ApiException as error:
            if error.status != HTTP_NOT_FOUND:
                raise
            if not self._warned.is_set():
                self._warned.set()
                log.warning("the API server does not serve %s (is its CRD installed?): there "
                            "are no such objects (looked for again periodically)", self._label)
            if kwargs.get("watch"):
                return _Canned(json.dumps({"type": "ERROR", "object": {
                    "kind": "Status", "code": HTTP_GONE, "reason": "Expired",
                    "message": KIND_NOT_SERVED}}).encode() + b"\n")
            return _Canned(b'{"metadata": {"resourceVersion": "0"}, "items": []}')
        self._warned.clear()
        return response


class _Canned:
    """The parts of a urllib3 response the informer reads, for a made-up answer."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, amt: int | None = None, decode_content: bool = False) -> Iterator[bytes]:
        yield self.data

    def release_conn(self) -> None:
        pass

    def close(self) -> None:
        pass
