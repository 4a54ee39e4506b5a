"""The custom kinds serve reads and writes, and how the kubernetes client lists each one.

A kind whose CRD is not installed is not an error: there are no such objects. Its LIST is
answered as empty (so the informer counts as synced and admissions are not held up), and
its WATCH as expired, so the informer lists again after its back-off and picks the kind up
once the CRD is installed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from webhook.cluster.kube_informer import Resource
from webhook.cluster.kube_kinds import AbsentIsEmpty
from webhook.policy.load.schema import API_VERSION

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
    label = f"{kind.kind} CRD ({kind.plural}.{kind.group})"
    return Resource(kind.kind, kind.api_version, AbsentIsEmpty(label, list_function(api, kind)))
