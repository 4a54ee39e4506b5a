"""A one-shot snapshot of the live cluster's Namespaces and the kinds the policies match.

An audit is a snapshot, so it LISTs (paged) once instead of starting the server's watch
cache: no threads, no wait for a sync, and the same plain dicts the API server sends
(``list_objects`` in webhook/cluster/kube_kinds.py: the client's models would rename fields
to snake_case and reject objects their client-side validation does not know).
Configuration as everywhere else: the in-cluster service account, else the kubeconfig
(``$KUBECONFIG`` or ~/.kube).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from webhook.cluster.connection import ApiClient
from webhook.cluster.kube_kinds import KindAbsent, list_objects
from webhook.cluster.own_kinds import POLICY_EXCEPTION
from webhook.offline.progress import NO_PROGRESS, Progress
from webhook.policy.model.kinds import NAMESPACE, SHORT_NAMES, KindRef, merge

DEFAULT_KINDS = (SHORT_NAMES["Service"], SHORT_NAMES["Ingress"])


def snapshot(
    api_client: ApiClient,
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
        try:
            # Built-in kinds are always served; a 404 there is an error worth showing.
            for item in list_objects(api_client, ref, needs=needs,
                                     absent_is_empty=bool(ref.group)
                                     and ref.group != "networking.k8s.io"):
                # LIST items come without kind/apiVersion; policies expect both.
                objects.append({"apiVersion": ref.api_version, "kind": ref.kind, **item})
                progress.advance()
        except KindAbsent:
            continue
    try:
        for item in list_objects(api_client, POLICY_EXCEPTION, needs=needs,
                                 absent_is_empty=True):
            objects.append({"apiVersion": POLICY_EXCEPTION.api_version,
                            "kind": POLICY_EXCEPTION.kind, **item})
    except KindAbsent:
        pass  # the CRD is not installed: there are no PolicyExceptions to honour
    return objects
