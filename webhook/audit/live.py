"""A one-shot snapshot of the live cluster's Namespaces, Services and Ingresses.

An audit is a snapshot, so it LISTs (paged) once instead of starting the server's watch
cache: no threads, no wait for a sync, and the same plain dicts the API server sends
(``_preload_content=False``: the client's models would rename fields to snake_case and
reject objects their client-side validation does not know). Configuration as everywhere
else: the in-cluster service account, else the kubeconfig (``$KUBECONFIG`` or ~/.kube).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from webhook.audit.progress import NO_PROGRESS, Progress
from webhook.errors import ClusterStateError

PAGE_SIZE = 500
MAX_PAGES = 10_000  # bounds the paging loop (5 million objects)
REQUEST_TIMEOUT_SECONDS = 60


def snapshot(
    api_client: client.ApiClient, progress: Progress = NO_PROGRESS
) -> list[dict[str, Any]]:
    """Every Namespace, Service, Ingress and PolicyException, with ``kind`` and
    ``apiVersion`` set (no PolicyExceptions where their CRD is not installed)."""
    core = client.CoreV1Api(api_client)
    networking = client.NetworkingV1Api(api_client)
    listings: tuple[tuple[str, str, Callable[..., Any]], ...] = (
        ("Namespace", "v1", core.list_namespace),
        ("Service", "v1", core.list_service_for_all_namespaces),
        ("Ingress", "networking.k8s.io/v1", networking.list_ingress_for_all_namespaces),
    )
    objects: list[dict[str, Any]] = []
    for kind, api_version, list_func in listings:
        progress.begin(f"listing {kind} objects")
        for item in _paged(kind, list_func):
            # LIST items come without kind/apiVersion; policies expect both.
            objects.append({"apiVersion": api_version, "kind": kind, **item})
            progress.advance()
    custom = client.CustomObjectsApi(api_client)
    exceptions = functools.partial(custom.list_custom_object_for_all_namespaces,
                                   "edgewarden.dev", "v1alpha1", "policyexceptions")
    try:
        for item in _paged("PolicyException", exceptions, absent_is_empty=True):
            objects.append({"apiVersion": "edgewarden.dev/v1alpha1", "kind": "PolicyException",
                            **item})
    except _Absent:
        pass  # the CRD is not installed: there are no PolicyExceptions to honour
    return objects


class _Absent(Exception):
    pass


def _paged(kind: str, list_func: Callable[..., Any],
           absent_is_empty: bool = False) -> Iterator[dict[str, Any]]:
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
                raise _Absent() from None
            raise ClusterStateError(
                f"listing {kind} objects failed: HTTP {error.status} {error.reason}"
                + (
                    " (the audit needs list on namespaces, services, ingresses and "
                    "policyexceptions)"
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
