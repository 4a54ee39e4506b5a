"""The custom kinds serve reads and writes, and how the kubernetes client lists each one.

A kind whose CRD is not installed is not an error: there are no such objects. Its LIST is
answered as empty (so the informer counts as synced and admissions are not held up), and
its WATCH as expired, so the informer lists again after its back-off and picks the kind up
once the CRD is installed.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from webhook.cluster.kube_informer import Resource
from webhook.policy.schema import API_VERSION

log = logging.getLogger("edgewarden.controllers")

HTTP_NOT_FOUND = 404


@dataclass(frozen=True)
class CustomKind:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


_GROUP, _VERSION = API_VERSION.split("/")
POLICY = CustomKind(_GROUP, _VERSION, "Policy", "policies", namespaced=False)
POLICY_EXCEPTION = CustomKind(_GROUP, _VERSION, "PolicyException", "policyexceptions",
                              namespaced=True)
POLICY_REPORT = CustomKind("wgpolicyk8s.io", "v1alpha2", "PolicyReport", "policyreports",
                           namespaced=True)
CLUSTER_POLICY_REPORT = CustomKind("wgpolicyk8s.io", "v1alpha2", "ClusterPolicyReport",
                                   "clusterpolicyreports", namespaced=False)


def list_function(api: client.ApiClient, kind: CustomKind) -> Callable[..., Any]:
    """The cluster-wide list (and watch) of ``kind``, as the informer calls it."""
    custom = client.CustomObjectsApi(api)
    if kind.namespaced:
        return functools.partial(custom.list_custom_object_for_all_namespaces,
                                 kind.group, kind.version, kind.plural)
    return functools.partial(custom.list_cluster_custom_object,
                             kind.group, kind.version, kind.plural)


def informer_resource(api: client.ApiClient, kind: CustomKind) -> Resource:
    """An informer Resource for ``kind`` that reads a missing CRD as no objects."""
    return Resource(kind.kind, kind.api_version, _AbsentIsEmpty(kind, list_function(api, kind)))


class _AbsentIsEmpty:
    def __init__(self, kind: CustomKind, list_func: Callable[..., Any]) -> None:
        self._kind = kind
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
                log.warning("the %s CRD (%s.%s) is not installed: there are no %s objects "
                            "(looked for again periodically)", self._kind.kind,
                            self._kind.plural, self._kind.group, self._kind.kind)
            if kwargs.get("watch"):
                return _Canned(b'{"type": "ERROR", "object": {"kind": "Status", "code": 410,'
                               b' "reason": "Expired", "message": "no such kind yet"}}\n')
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
