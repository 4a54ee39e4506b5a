"""Old Ingress apiVersions judged as ``networking.k8s.io/v1``, as the API server does.

A webhook registered with ``matchPolicy: Equivalent`` (ours, and the API server's default)
receives every Ingress as ``networking.k8s.io/v1``, whichever version the client wrote:
the API server converts ``extensions/v1beta1`` and ``networking.k8s.io/v1beta1`` first.
Manifests in a repository can still carry the old versions (old charts, old docs), so the
offline commands convert them the same way before judging. Otherwise a policy reading
``backend.service.name`` would see nothing in a ``serviceName``, and an
``extensions/v1beta1`` Ingress, a kind of another group, would not be judged at all.

The conversion follows Kubernetes' own (pkg/apis/networking, v1beta1 defaults and
conversion): ``spec.backend`` becomes ``spec.defaultBackend``; a backend's
``serviceName``/``servicePort`` become ``service.name`` and ``service.port.number`` (an
integer) or ``service.port.name`` (a string); a path without ``pathType`` gets the v1beta1
default, ``ImplementationSpecific``. Everything else has the same shape in both.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

INGRESS = "Ingress"
V1 = "networking.k8s.io/v1"
# Every apiVersion Kubernetes ever served Ingress in, but v1 (served since 1.19).
OLD_VERSIONS = ("extensions/v1beta1", "networking.k8s.io/v1beta1")
# What v1beta1 defaulted a missing pathType to; v1 requires one.
DEFAULT_PATH_TYPE = "ImplementationSpecific"


def is_old_ingress(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == INGRESS and obj.get("apiVersion") in OLD_VERSIONS


def ingress_as_v1(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A ``networking.k8s.io/v1`` copy of an old-version Ingress (``obj`` is not changed)."""
    converted = copy.deepcopy(dict(obj))
    converted["apiVersion"] = V1
    spec = converted.get("spec")
    if not isinstance(spec, dict):
        return converted
    if "backend" in spec:
        backend = spec.pop("backend")
        spec.setdefault("defaultBackend", _backend(backend))
    elif isinstance(spec.get("defaultBackend"), dict):
        spec["defaultBackend"] = _backend(spec["defaultBackend"])
    for rule in spec.get("rules") or []:
        http = rule.get("http") if isinstance(rule, dict) else None
        if not isinstance(http, dict):
            continue
        for path in http.get("paths") or []:
            if not isinstance(path, dict):
                continue
            path.setdefault("pathType", DEFAULT_PATH_TYPE)
            if isinstance(path.get("backend"), dict):
                path["backend"] = _backend(path["backend"])
    return converted


def _backend(backend: Any) -> Any:
    """``{serviceName, servicePort}`` as ``{service: {name, port: {number|name}}}``."""
    if not isinstance(backend, dict) or not ({"serviceName", "servicePort"} & backend.keys()):
        return backend
    converted = {k: v for k, v in backend.items() if k not in ("serviceName", "servicePort")}
    service: dict[str, Any] = {}
    if backend.get("serviceName") is not None:
        service["name"] = backend["serviceName"]
    port = backend.get("servicePort")
    # IntOrString: an integer is a port number, a string a port name (as Kubernetes reads it).
    if isinstance(port, bool) or port is None:
        pass
    elif isinstance(port, int):
        service["port"] = {"number": port}
    else:
        service["port"] = {"name": str(port)}
    converted["service"] = service
    return converted
