"""JSON Schemas of the Policy and PolicyException documents.

Structural checks live here; CEL is checked on compile. The loader validates files with
these schemas, and the CustomResourceDefinitions in deploy/crds are generated from them
(webhook/policy/load/crd.py), so a document the loader refuses is refused by the API server at
``kubectl apply`` too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from webhook.policy.blocks.protocol import Block
from webhook.policy.blocks.registry import blocks
from webhook.policy.model.kinds import SHORT_NAMES

API_VERSION = "edgewarden.dev/v1alpha1"

_STRING_LIST: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}
# Namespaced objects (a PolicyException) may have DNS-subdomain names, as in Kubernetes.
_SUBDOMAIN = {
    "type": "string",
    "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
    "maxLength": 253,
}
_STRING_MAP: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}
_KINDS: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "uniqueItems": True,
    # Short names; any other kind is named in resourceRules.
    "items": {"enum": list(SHORT_NAMES)},
}
# As ValidatingAdmissionPolicy's matchConstraints.resourceRules, without wildcards (a policy
# names what it can judge); ``kind`` names a resource edgewarden does not know (your CRD).
_RESOURCE_RULES: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiGroups", "apiVersions", "resources"],
        "properties": {
            "apiGroups": {**_STRING_LIST, "minItems": 1},
            "apiVersions": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "pattern": "^v[0-9]+((alpha|beta)[0-9]+)?$"},
            },
            "resources": {**_STRING_LIST, "minItems": 1},
            "kind": {"type": "string", "pattern": "^[A-Z][A-Za-z0-9]*$"},
            "scope": {"enum": ["Namespaced", "Cluster"]},
        },
    },
}

_LABEL_SELECTOR: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key", "operator"],
                "properties": {
                    "key": {"type": "string", "minLength": 1},
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": _STRING_LIST,
                },
            },
        },
    },
}

_NAMED_EXPRESSION: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "expression"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "expression": {"type": "string", "minLength": 1},
    },
}

# Without its blocks: policy_schema() adds them.
_POLICY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": API_VERSION},
        "kind": {"const": "Policy"},
        "metadata": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "name": _NAME,
                "annotations": _STRING_MAP,
                "labels": _STRING_MAP,
            },
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["match"],
            "properties": {
                "mode": {"enum": ["Enforce", "Warn", "Audit"]},
                "failurePolicy": {"enum": ["Fail", "Ignore"]},
                # A candidate judged beside the enforced set, never answering (docs/shadow.md).
                "shadow": {"type": "boolean"},
                "match": {
                    "type": "object",
                    "additionalProperties": False,
                    "anyOf": [{"required": ["kinds"]}, {"required": ["resourceRules"]}],
                    "properties": {
                        "kinds": _KINDS,
                        "resourceRules": _RESOURCE_RULES,
                        "operations": {
                            "type": "array",
                            "minItems": 1,
                            "uniqueItems": True,
                            "items": {"enum": ["CREATE", "UPDATE", "DELETE", "CONNECT", "*"]},
                        },
                        "namespaceSelector": _LABEL_SELECTOR,
                        "objectSelector": _LABEL_SELECTOR,
                        "exclude": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "namespaces": _STRING_LIST,
                                "usernames": _STRING_LIST,
                                "groups": _STRING_LIST,
                            },
                        },
                    },
                },
                "matchConditions": {"type": "array", "maxItems": 64, "items": _NAMED_EXPRESSION},
                "variables": {"type": "array", "items": _NAMED_EXPRESSION},
            },
        },
    },
}

_composed: tuple[tuple[Block[Any], ...], dict[str, Any]] | None = None


def policy_schema(registered: Sequence[Block[Any]] | None = None) -> dict[str, Any]:
    """The Policy schema with every block's fragment under ``spec`` (the registry's blocks
    unless ``registered`` says), at least one of them required. Rebuilt only when the
    registry changes."""
    global _composed
    chosen = tuple(blocks() if registered is None else registered)
    if _composed is not None and _composed[0] == chosen:
        return _composed[1]
    spec = _POLICY_SCHEMA["properties"]["spec"]
    schema = {
        **_POLICY_SCHEMA,
        "properties": {
            **_POLICY_SCHEMA["properties"],
            "spec": {
                "type": spec["type"],
                "additionalProperties": spec["additionalProperties"],
                "required": spec["required"],
                "anyOf": [{"required": [block.name]} for block in chosen],
                "properties": {
                    **spec["properties"],
                    **{block.name: dict(block.schema) for block in chosen},
                },
            },
        },
    }
    _composed = (chosen, schema)
    return schema


# A PolicyException's selector must say what the objects it exempts carry: an empty one, or
# one of only DoesNotExist/NotIn requirements (met by any object without those labels),
# exempts practically the whole namespace. The loader says so (exceptions.match_all_problem);
# the CRD carries the same rule in CEL, on a bounded list so its cost is bounded.
_EXCEPTION_SELECTOR_RULE = (
    "(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) "
    "&& self.matchExpressions.exists(e, e.operator == 'In' || e.operator == 'Exists'))")
_EXCEPTION_SELECTOR: dict[str, Any] = {
    **_LABEL_SELECTOR,
    "minProperties": 1,
    "properties": {
        **_LABEL_SELECTOR["properties"],
        "matchExpressions": {**_LABEL_SELECTOR["properties"]["matchExpressions"],
                             "maxItems": 32},
    },
    "x-kubernetes-validations": [{
        "rule": _EXCEPTION_SELECTOR_RULE,
        "message": "a selector needs a matchLabels entry or an In or Exists requirement: "
                   "one of only DoesNotExist and NotIn exempts practically the whole namespace",
    }],
}

EXCEPTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": API_VERSION},
        "kind": {"const": "PolicyException"},
        "metadata": {
            "type": "object",
            "additionalProperties": False,
            # A file names the namespace it exempts in; a cluster object has it anyway.
            "required": ["name", "namespace"],
            "properties": {
                "name": _SUBDOMAIN,
                "namespace": _NAME,
                "annotations": _STRING_MAP,
                "labels": _STRING_MAP,
            },
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            # expiresAt is required: an exception ends (its lifetime is bounded by serve
            # --max-exception-days, which the loader's rules check).
            "required": ["policies", "match", "expiresAt"],
            "properties": {
                "policies": {"type": "array", "minItems": 1, "uniqueItems": True, "items": _NAME},
                "match": {
                    "type": "object",
                    "additionalProperties": False,
                    # Narrow by construction: names, a selector, or both (an object must then
                    # satisfy both); a whole namespace is the policy's own exclude.namespaces.
                    "anyOf": [{"required": ["names"]}, {"required": ["selector"]}],
                    "properties": {
                        "kinds": _KINDS,
                        "names": {
                            "type": "array",
                            "minItems": 1,
                            "uniqueItems": True,
                            "items": {"type": "string", "minLength": 1, "maxLength": 253},
                        },
                        "selector": _EXCEPTION_SELECTOR,
                    },
                },
                # RFC 3339 (the loader parses it; the API server checks the format).
                "expiresAt": {"type": "string", "format": "date-time"},
                "ticket": {"type": "string", "minLength": 1},
                "reason": {"type": "string", "minLength": 1},
                # Written by edgewarden's mutating webhook from the requesting user on every
                # CREATE and UPDATE (POST /mutate-policyexception); what a client writes
                # here is overwritten.
                "approvedBy": {"type": "string", "minLength": 1},
            },
        },
    },
}

# The status a server writes on a Policy object (the CRD's status subresource): conditions
# as Kubernetes defines metav1.Condition, the generation judged, and when it was loaded.
CONDITION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "status", "lastTransitionTime", "reason", "message"],
    "properties": {
        "type": {"type": "string", "maxLength": 316},
        "status": {"enum": ["True", "False", "Unknown"]},
        "observedGeneration": {"type": "integer", "minimum": 0},
        "lastTransitionTime": {"type": "string", "format": "date-time"},
        "reason": {"type": "string", "maxLength": 1024, "minLength": 1},
        "message": {"type": "string", "maxLength": 32768},
    },
}
POLICY_STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "conditions": {"type": "array", "items": CONDITION_SCHEMA},
        "observedGeneration": {"type": "integer", "minimum": 0},
        "loadedAt": {"type": "string", "format": "date-time"},
    },
}
# The status a server writes on a PolicyException object: whether it is honoured, and if
# not why (off, a namespace not allowed, too long a lifetime, does not load).
EXCEPTION_STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "conditions": {"type": "array", "items": CONDITION_SCHEMA},
        "observedGeneration": {"type": "integer", "minimum": 0},
    },
}
