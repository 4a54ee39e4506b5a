"""AdmissionReview parsing and rendering, without a server."""

from __future__ import annotations

import base64

import orjson
import pytest

from tests.support import patch_of
from webhook.admission.review import (
    ReviewError,
    audit_annotation_key,
    build_response,
    encode_review,
    parse_review,
)

from .harness import load_review


def test_parse_maps_the_request_fields() -> None:
    review = parse_review(orjson.dumps(load_review("nodeport-create-payments.json")))
    request = review.request
    assert request.uid == "7f0b2a34-9c1e-4b7e-a3d2-5e1f0c9d8b21"
    assert (request.kind, request.group, request.version, request.resource) == (
        "Service", "", "v1", "services")
    assert (request.namespace, request.name, request.operation) == ("payments", "checkout",
                                                                    "CREATE")
    assert request.user.username.startswith("system:serviceaccount:argocd")
    assert "system:authenticated" in request.user.groups
    assert request.object is not None and request.object["spec"]["type"] == "NodePort"
    assert request.old_object is None
    assert request.dry_run is False
    assert request.raw["options"]["kind"] == "CreateOptions"


def test_parse_reads_dry_run() -> None:
    document = load_review("nodeport-create-payments.json")
    document["request"]["dryRun"] = True
    assert parse_review(orjson.dumps(document)).request.dry_run is True


@pytest.mark.parametrize("body, reason", [
    (b"", "not valid JSON"),
    (b'"a string"', "not a JSON object"),
    (b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": 3}',
     "no request"),
    (b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", '
     b'"request": {"uid": "x", "operation": "CREATE", "kind": {}, "resource": {}, '
     b'"object": []}}', "request.object"),
])
def test_parse_refuses_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(ReviewError, match=reason):
        parse_review(body)


def test_render_deny_has_status_403_and_echoes_envelope_and_uid() -> None:
    review = parse_review(orjson.dumps(load_review("nodeport-create-payments.json")))
    body = orjson.loads(
        encode_review(review, build_response("u-1", allowed=False, message="no"))
    )
    assert body["apiVersion"] == "admission.k8s.io/v1"
    assert body["kind"] == "AdmissionReview"
    assert body["response"] == {"uid": "u-1", "allowed": False,
                                "status": {"code": 403, "message": "no", "reason": "Forbidden"}}


def test_render_patch_is_base64_json_patch() -> None:
    patch = [{"op": "add", "path": "/metadata/annotations/a~1b", "value": "c"}]
    body = encode_review(None, build_response("u-2", allowed=True, patch=patch))
    response = orjson.loads(body)["response"]
    assert response["patchType"] == "JSONPatch"
    assert orjson.loads(base64.b64decode(response["patch"])) == patch
    assert patch_of(response) == patch


def test_render_allow_is_minimal() -> None:
    response = orjson.loads(encode_review(None, build_response("u-3", allowed=True)))["response"]
    assert response == {"uid": "u-3", "allowed": True}


@pytest.mark.parametrize("name, key", [
    ("deny-nodeport-in-production", "deny-nodeport-in-production"),
    ("team.example.com", "team.example.com"),
    ("a/b c", "a-b-c"),
    ("x" * 80, "x" * 63),
    ("-edge-", "edge"),
])
def test_audit_annotation_keys_are_valid_qualified_name_parts(name: str, key: str) -> None:
    assert audit_annotation_key(name) == key
