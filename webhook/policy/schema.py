"""JSON Schema of the Policy document. Structural checks live here; CEL is checked on compile."""

from __future__ import annotations

from typing import Any

API_VERSION = "edgewarden.dev/v1alpha1"

_STRING_LIST: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}

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

_JSON_PATCH_OP: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["op", "path"],
    "properties": {
        "op": {"enum": ["add", "remove", "replace", "move", "copy", "test"]},
        "path": {"type": "string", "pattern": "^(/.*)?$"},
        "from": {"type": "string", "pattern": "^(/.*)?$"},
        "value": {},
    },
}

POLICY_SCHEMA: dict[str, Any] = {
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
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["match"],
            "anyOf": [
                {"required": ["validations"]},
                {"required": ["limit"]},
                {"required": ["mutations"]},
            ],
            "properties": {
                "mode": {"enum": ["Enforce", "Warn", "Audit"]},
                "failurePolicy": {"enum": ["Fail", "Ignore"]},
                "match": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["kinds"],
                    "properties": {
                        "kinds": {
                            "type": "array",
                            "minItems": 1,
                            "uniqueItems": True,
                            "items": {"enum": ["Service", "Ingress"]},
                        },
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
                "validations": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["expression"],
                        "properties": {
                            "expression": {"type": "string", "minLength": 1},
                            "message": {"type": "string", "minLength": 1},
                            "messageExpression": {"type": "string", "minLength": 1},
                        },
                    },
                },
                "limit": {
                    "type": "object",
                    "additionalProperties": False,
                    "oneOf": [{"required": ["max"]}, {"required": ["maxExpression"]}],
                    "properties": {
                        "where": {"type": "string", "minLength": 1},
                        "max": {"type": "integer", "minimum": 0},
                        "maxExpression": {"type": "string", "minLength": 1},
                        "message": {"type": "string", "minLength": 1},
                    },
                },
                "mutations": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "minProperties": 1,
                        "maxProperties": 1,
                        "properties": {
                            "setAnnotations": {
                                "type": "object",
                                "minProperties": 1,
                                "additionalProperties": {"type": "string"},
                            },
                            "internalLoadBalancer": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "flavour": {"enum": ["aws", "aws-lbc", "gcp", "azure"]}
                                },
                            },
                            "patch": {"type": "array", "minItems": 1, "items": _JSON_PATCH_OP},
                        },
                    },
                },
            },
        },
    },
}
