"""The CustomResourceDefinitions of Policy and PolicyException, generated from the JSON
Schemas the loader validates with (schema.py), so the API server refuses at ``kubectl apply``
what the loader would refuse. ``scripts/generate-crds`` writes them to deploy/crds; a test
checks the shipped files equal what this generates.

JSON Schema becomes a *structural* OpenAPI v3 schema, as apiextensions.k8s.io/v1 demands:
every node has a type (inferred from ``enum``/``const``), ``additionalProperties: false``
goes (the API server prunes, and ``kubectl apply``'s strict field validation refuses,
unknown fields), ``uniqueItems`` becomes ``x-kubernetes-list-type: set``, an open schema
(``{}``, a JSONPatch value) preserves unknown fields, and ``anyOf``/``oneOf`` keep only what
structural schemas allow in them (``required``). No ``$ref`` exists to resolve. What the
schema cannot say (CEL, duplicate names) is still the loader's: a Policy object that passes
the API server and fails the loader gets an error status.
"""

from __future__ import annotations

import copy
from typing import Any

from webhook.policy.load.schema import (
    API_VERSION,
    EXCEPTION_SCHEMA,
    EXCEPTION_STATUS_SCHEMA,
    POLICY_STATUS_SCHEMA,
    policy_schema,
)

GROUP, VERSION = API_VERSION.split("/")
_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number"}
# Validation keywords structural schemas allow inside anyOf/oneOf/allOf/not.
_IN_JUNCTORS = frozenset({"required", "minProperties", "maxProperties", "minItems",
                          "maxItems", "minLength", "maxLength", "pattern", "enum"})
_READY = '.status.conditions[?(@.type=="Ready")]'


def structural(schema: Any) -> Any:
    """A JSON Schema (draft 2020-12, the subset schema.py uses) as a structural schema."""
    if not isinstance(schema, dict):
        raise TypeError(f"not a schema: {schema!r}")
    if not schema:
        return {"x-kubernetes-preserve-unknown-fields": True}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("$ref", "$schema", "$defs"):
            raise ValueError(f"{key} has no place in a CRD schema")
        if key == "const":
            out["enum"] = [value]
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = structural(value)
            # False: a structural schema prunes unknown fields; strict apply refuses them.
        elif key == "uniqueItems":
            if value:
                out["x-kubernetes-list-type"] = "set"
        elif key == "properties":
            out[key] = {name: structural(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = structural(value)
        elif key in ("anyOf", "oneOf", "allOf"):
            out[key] = [_junctor(item) for item in value]
        else:
            out[key] = copy.deepcopy(value)
    if "type" not in out and "x-kubernetes-preserve-unknown-fields" not in out:
        out["type"] = _inferred_type(out)
    if isinstance(out.get("type"), list):
        raise ValueError(f"a structural schema has one type, not {out['type']}")
    return out


def _junctor(item: dict[str, Any]) -> dict[str, Any]:
    extra = set(item) - _IN_JUNCTORS
    if extra:
        raise ValueError(f"structural schemas allow no {sorted(extra)} inside anyOf/oneOf")
    return copy.deepcopy(item)


def _inferred_type(schema: dict[str, Any]) -> str:
    values = schema.get("enum")
    if values:
        types = {_TYPES[type(v)] for v in values}
        if len(types) == 1:
            return types.pop()
    if "properties" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    raise ValueError(f"cannot tell the type of {schema}")


def _root(schema: dict[str, Any], *, status: dict[str, Any] | None) -> dict[str, Any]:
    """The object's schema: apiVersion, kind and metadata as Kubernetes handles them."""
    converted: dict[str, Any] = structural(schema)
    properties = converted["properties"]
    name = properties["metadata"]["properties"]["name"]
    properties["apiVersion"] = {"type": "string"}
    properties["kind"] = {"type": "string"}
    # Kubernetes owns metadata; a CRD may only restrict the name.
    properties["metadata"] = {"type": "object", "properties": {"name": name}}
    if status is not None:
        properties["status"] = structural(status)
    converted["required"] = ["spec"]
    return converted


def _crd(kind: str, plural: str, short: str, scope: str, schema: dict[str, Any],
         columns: list[dict[str, Any]], *, status: bool) -> dict[str, Any]:
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
        "additionalPrinterColumns": columns,
    }
    if status:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "edgewarden"},
            # Uninstalling the chart must not delete every Policy object with the CRD.
            "annotations": {"helm.sh/resource-policy": "keep"},
        },
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                      "singular": kind.lower(), "shortNames": [short],
                      "categories": ["edgewarden"]},
            "versions": [version],
        },
    }


def policy_crd() -> dict[str, Any]:
    schema = _root(policy_schema(), status=POLICY_STATUS_SCHEMA)
    schema["description"] = (
        "An edgewarden policy: the same spec as a policy file (see docs/policies.md). "
        "status says whether this generation serves, and why not.")
    columns = [
        {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
        {"name": "Shadow", "type": "boolean", "jsonPath": ".spec.shadow"},
        {"name": "Ready", "type": "string", "jsonPath": _READY + ".status"},
        {"name": "Reason", "type": "string", "jsonPath": _READY + ".reason"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return _crd("Policy", "policies", "ewpol", "Cluster", schema, columns, status=True)


def exception_crd() -> dict[str, Any]:
    schema = _root(EXCEPTION_SCHEMA, status=EXCEPTION_STATUS_SCHEMA)
    schema["description"] = (
        "Exempts objects of its namespace, by name and/or label selector, from the policies "
        "it names until expiresAt (see docs/cluster-objects.md, PolicyExceptions). status "
        "says whether the server honours it, and why not.")
    columns = [
        {"name": "Policies", "type": "string", "jsonPath": ".spec.policies"},
        {"name": "Expires", "type": "string", "jsonPath": ".spec.expiresAt"},
        {"name": "Ticket", "type": "string", "jsonPath": ".spec.ticket"},
        {"name": "Approved-By", "type": "string", "jsonPath": ".spec.approvedBy"},
        {"name": "Ready", "type": "string", "jsonPath": _READY + ".status"},
        {"name": "Reason", "type": "string", "jsonPath": _READY + ".reason"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return _crd("PolicyException", "policyexceptions", "ewpolex", "Namespaced", schema,
                columns, status=True)


CRDS = {"edgewarden.dev_policies.yaml": policy_crd,
        "edgewarden.dev_policyexceptions.yaml": exception_crd}
