"""A one-shot snapshot of the live cluster's Namespaces and the kinds the policies match.

An audit is a snapshot, so it LISTs (paged) once instead of starting the server's watch
cache: no threads, no wait for a sync, and the same plain dicts the API server sends
(``_preload_content=False``: the client's models would rename fields to snake_case and
reject objects their client-side validation does not know). Configuration as everywhere
else: the in-cluster service account, else the kubeconfig (``$KUBECONFIG`` or ~/.kube).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from webhook.cluster.kube_kinds import list_function
from webhook.errors import ClusterStateError
from webhook.offline.progress import NO_PROGRESS, Progress
from webhook.policy.kinds import NAMESPACE, SHORT_NAMES, KindRef, merge

DEFAULT_KINDS = (SHORT_NAMES["Service"], SHORT_NAMES["Ingress"])

PAGE_SIZE = 500
MAX_PAGES = 10_000  # bounds the paging loop (5 million objects)
REQUEST_TIMEOUT_SECONDS = 60


def snapshot(
    api_client: client.ApiClient,
    progress: Progress = NO_PROGRESS,
    kinds: Iterable[KindRef] = DEFAULT_KINDS,
) -> list[dict[str, Any]]:
    """Every Namespace, every object of ``kinds`` (the kinds the policies match) and every
    PolicyException, with ``kind`` and ``apiVersion`` set; a kind the API server does not
    serve (its CRD is not installed) has no objects."""
    objects: list[dict[str, Any]] = []
    refs = (NAMESPACE, *merge(kinds))
    names = [ref.resource for ref in refs] + ["policyexceptions"]
    needs = ", ".join(names[:-1]) + " and " + names[-1]
    for ref in refs:
        progress.begin(f"listing {ref.kind} objects")
        list_func = list_function(api_client, ref)
        try:
            # Built-in kinds are always served; a 404 there is an error worth showing.
            for item in _paged(ref.kind, list_func, needs, absent_is_empty=bool(ref.group)
                               and ref.group != "networking.k8s.io"):
                # LIST items come without kind/apiVersion; policies expect both.
                objects.append({"apiVersion": ref.api_version, "kind": ref.kind, **item})
                progress.advance()
        except _Absent:
            continue
    custom = client.CustomObjectsApi(api_client)
    exceptions = functools.partial(custom.list_custom_object_for_all_namespaces,
                                   "edgewarden.dev", "v1alpha1", "policyexceptions")
    try:
        for item in _paged("PolicyException", exceptions, needs, absent_is_empty=True):
            objects.append({"apiVersion": "edgewarden.dev/v1alpha1", "kind": "PolicyException",
                            **item})
    except _Absent:
        pass  # the CRD is not installed: there are no PolicyExceptions to honour
    return objects


class _Absent(Exception):
    pass


def _paged(kind: str, list_func: Callable[..., Any], needs: str,
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
