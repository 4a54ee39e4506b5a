"""How the ``kubernetes`` client lists (and watches) any kind cluster-wide.

A kind whose CRD is not installed is not an error: there are no such objects. Its LIST is
answered as empty (so the informer counts as synced and admissions are not held up), and
its WATCH as expired, so the informer lists again after its back-off and picks the kind up
once the CRD is installed. Gateway API kinds in a cluster without Gateway API are the
common case; edgewarden's own Policy and PolicyException kinds another.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from webhook.cluster.kube_informer import Resource
from webhook.policy.model.kinds import KindRef

log = logging.getLogger("edgewarden.cluster")

HTTP_NOT_FOUND = 404


def _snake(kind: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()


def list_function(api: client.ApiClient, ref: KindRef) -> Callable[..., Any]:
    """The cluster-wide list (and watch) of ``ref``, as the informer calls it."""
    if not ref.group and ref.version == "v1":
        core = client.CoreV1Api(api)
        name = f"list_{_snake(ref.kind)}" + ("_for_all_namespaces" if ref.namespaced else "")
        found = getattr(core, name, None)
        if callable(found):
            return found  # type: ignore[no-any-return]
    custom = client.CustomObjectsApi(api)
    # /apis/<group>/<version>/<plural> lists a namespaced kind in every namespace too.
    return functools.partial(custom.list_cluster_custom_object, ref.group, ref.version,
                             ref.resource)


def kind_resource(api: client.ApiClient, ref: KindRef) -> Resource:
    """An informer Resource for ``ref``, filed under its key; a missing CRD is no objects."""
    label = f"{ref.kind} ({ref.resource}.{ref.group or 'core'})"
    return Resource(ref.key, ref.api_version, AbsentIsEmpty(label, list_function(api, ref)),
                    object_kind=ref.kind)


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
