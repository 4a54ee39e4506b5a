"""The Claim CustomResourceDefinition (webhook/cluster/claims.py says what a Claim holds).

Namespaced, living in edgewarden's own namespace only: the webhook's ServiceAccount then
writes them through a Role there (no cluster-wide write), nobody else needs to, and
deleting that namespace on uninstall takes every claim with it. ``kubectl get claims -n
edgewarden`` prints who holds what, and since when.
"""

from __future__ import annotations

from typing import Any

from webhook.cluster.claims import COUNT, EXPIRED, GROUP, HELD, KEY, KIND, PENDING, PLURAL, VERSION

_STRING: dict[str, Any] = {"type": "string"}
_ENTRY: dict[str, Any] = {
    "type": "object",
    "required": ["namespace", "state", "since"],
    "properties": {
        "namespace": {**_STRING, "description": "The namespace the entry holds it for."},
        "kind": {**_STRING, "description": "The kind of the holding object."},
        "object": {**_STRING, "description": "The holding object's name (empty until known "
                                             "for a create with generateName)."},
        "uid": {**_STRING, "description": "The admission request that wrote the entry."},
        "key": {**_STRING, "description": "Key claims: the unique key held (a host, or a "
                                          "host and path)."},
        "since": {**_STRING, "format": "date-time"},
        "state": {"type": "string", "enum": [PENDING, HELD, EXPIRED]},
        "expiresAt": {**_STRING, "format": "date-time",
                      "description": "Pending: when it stops holding unless its object "
                                     "appeared. Expired: the end of its cool-down."},
        "blocking": {"type": "boolean", "description": "false: recorded, but holds nothing "
                                                       "against others until its object "
                                                       "appears (a cool-down is running)."},
    },
}


def claim_crd() -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "description": ("Who holds a unique key (a host) or places under a limit, written "
                        "by edgewarden's webhook with compare-and-swap before it admits "
                        "(see docs/replicas.md). Not for people to write."),
        "required": ["spec"],
        "properties": {
            "apiVersion": _STRING,
            "kind": _STRING,
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "required": ["type", "policy", "subject"],
                "properties": {
                    "type": {"type": "string", "enum": [KEY, COUNT]},
                    "policy": {**_STRING, "description": "The policy that claims."},
                    "subject": {**_STRING, "description": "Key: the host (or key) claimed. "
                                                          "Count: the namespace counted."},
                    "holders": {**_STRING, "description": "namespace/object of each entry "
                                                          "(what kubectl prints)."},
                    "state": {"type": "string", "enum": [PENDING, HELD, EXPIRED]},
                    "since": {**_STRING, "format": "date-time"},
                    "entries": {"type": "array", "items": _ENTRY},
                },
            },
        },
    }
    columns = [
        {"name": "Type", "type": "string", "jsonPath": ".spec.type"},
        {"name": "Subject", "type": "string", "jsonPath": ".spec.subject"},
        {"name": "Holders", "type": "string", "jsonPath": ".spec.holders"},
        {"name": "State", "type": "string", "jsonPath": ".spec.state"},
        {"name": "Since", "type": "date", "jsonPath": ".spec.since"},
        {"name": "Policy", "type": "string", "jsonPath": ".spec.policy", "priority": 1},
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}",
                     "labels": {"app.kubernetes.io/name": "edgewarden"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": KIND, "listKind": f"{KIND}List", "plural": PLURAL,
                      "singular": KIND.lower(), "shortNames": ["ewclaim"],
                      "categories": ["edgewarden"]},
            "versions": [{"name": VERSION, "served": True, "storage": True,
                          "schema": {"openAPIV3Schema": schema},
                          "additionalPrinterColumns": columns}],
        },
    }
