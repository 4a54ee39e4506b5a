"""No object content in logs or responses: policies that fail at run time on fields that
hold a secret (a canary), for every kind edgewarden registers for and a Secret, through the
HTTPS handler. The failures name expressions and types; the canary is nowhere. (The
object's kind, namespace and name identify it in the decision log, as in the API server's
audit log: those are not content.)"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from webhook.certs.files import GeneratedCertificates

from .harness import base_settings, start_server

CANARY = "CANARY-5ecret"

# (group, version, resource, kind) and an object of the kind; every string becomes the canary.
KINDS: list[tuple[str, str, str, str, dict[str, Any]]] = [
    ("", "v1", "services", "Service",
     {"spec": {"type": "ClusterIP", "ports": [{"name": "x", "port": 80}],
               "selector": {"app": "x"}, "externalName": "x"}}),
    ("networking.k8s.io", "v1", "ingresses", "Ingress",
     {"spec": {"ingressClassName": "x", "rules": [{"host": "x", "http": {"paths": [
         {"path": "/x", "pathType": "Prefix",
          "backend": {"service": {"name": "x", "port": {"number": 80}}}}]}}],
               "tls": [{"hosts": ["x"], "secretName": "x"}]}}),
    ("gateway.networking.k8s.io", "v1", "gateways", "Gateway",
     {"spec": {"gatewayClassName": "x",
               "listeners": [{"name": "x", "hostname": "x", "port": 443, "protocol": "x"}]}}),
    ("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute",
     {"spec": {"hostnames": ["x"], "parentRefs": [{"name": "x"}],
               "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/x"}}],
                          "backendRefs": [{"name": "x", "port": 80}]}]}}),
    ("gateway.networking.k8s.io", "v1", "grpcroutes", "GRPCRoute",
     {"spec": {"hostnames": ["x"], "parentRefs": [{"name": "x"}],
               "rules": [{"backendRefs": [{"name": "x", "port": 80}]}]}}),
    ("gateway.networking.k8s.io", "v1alpha2", "tlsroutes", "TLSRoute",
     {"spec": {"hostnames": ["x"], "parentRefs": [{"name": "x"}],
               "rules": [{"backendRefs": [{"name": "x", "port": 443}]}]}}),
    ("", "v1", "secrets", "Secret",
     {"type": "Opaque", "stringData": {"password": "x"}, "data": {"password": "eA=="}}),
]

# Each fails at run time on a field holding the canary, in a way whose raw error quotes it.
FAILING = [
    "int(object.metadata.labels['canary']) > 0",  # not a number
    "duration(object.metadata.annotations['canary']) > duration('1s')",  # not a duration
    "timestamp(object.metadata.annotations['canary']) > timestamp('2020-01-01T00:00:00Z')",
    "object.metadata.annotations['canary'].matches(object.metadata.annotations['canary']"
    " + '(')",  # not a regex
    "object.metadata.labels[object.metadata.name] == 'x'",  # a missing key: the canary
    "base64.decode(object.metadata.labels['canary']).size() > 0",  # a callback's failure
    "object.metadata.labels['canary'].substring(100) == ''",
    "object.metadata.annotations['canary'] == object.metadata.annotations['missing-key']",
]


def canaried(value: Any, key: str = "") -> Any:
    """``value`` with every string (but apiVersion, kind, namespace) the canary."""
    if isinstance(value, dict):
        return {k: canaried(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [canaried(v) for v in value]
    if isinstance(value, str) and key not in ("apiVersion", "kind", "namespace", "type",
                                              "pathType", "protocol", "password"):
        return CANARY
    return value


def policy_yaml(group: str, version: str, resource: str, kind: str, failure: str) -> str:
    rules = [{"apiGroups": [group], "apiVersions": [version], "resources": [resource],
              "kind": kind}]
    documents = []
    for i, expression in enumerate(FAILING):
        documents.append({
            "apiVersion": "edgewarden.dev/v1alpha1", "kind": "Policy",
            "metadata": {"name": f"{resource}-{failure.lower()}-{i}"},
            "spec": {"failurePolicy": failure,
                     "match": {"resourceRules": rules, "operations": ["CREATE", "UPDATE"]},
                     "validations": [{"expression": expression}]},
        })
    # A JSONPatch that does not apply: jsonpatch's own message quotes the object.
    documents.append({
        "apiVersion": "edgewarden.dev/v1alpha1", "kind": "Policy",
        "metadata": {"name": f"{resource}-{failure.lower()}-patch"},
        "spec": {"failurePolicy": failure,
                 "match": {"resourceRules": rules, "operations": ["CREATE", "UPDATE"]},
                 "mutations": [{"patch": [
                     {"op": "test", "path": "/metadata/labels/canary", "value": "x"},
                     {"op": "remove", "path": "/metadata/labels/canary"}]}]},
    })
    return "\n---\n".join(json.dumps(d) for d in documents)


def review(group: str, version: str, resource: str, kind: str, obj: dict[str, Any],
           operation: str, uid: int) -> dict[str, Any]:
    gvk = {"group": group, "version": version, "kind": kind}
    gvr = {"group": group, "version": version, "resource": resource}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": f"00000000-0000-4000-8000-{uid:012d}", "kind": gvk, "resource": gvr,
        "requestKind": gvk, "requestResource": gvr, "name": obj["metadata"]["name"],
        "namespace": "dev", "operation": operation,
        "userInfo": {"username": "jane@example.com", "groups": ["system:authenticated"]},
        "object": obj, "oldObject": obj if operation == "UPDATE" else None, "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}}}


def test_failing_policies_never_put_an_objects_values_in_a_log_or_a_response(
    certificates: GeneratedCertificates, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    for group, version, resource, kind, _ in KINDS:
        for failure in ("Fail", "Ignore"):
            (folder / f"{resource}-{failure}.yaml").write_text(
                policy_yaml(group, version, resource, kind, failure), encoding="utf-8")
    caplog.set_level(logging.DEBUG)
    server = start_server(base_settings(certificates, tmp_path, policies=(folder,),
                                        log_level="debug"), certificates.ca_file)
    try:
        answers: list[tuple[str, dict[str, Any]]] = []
        mutations: list[tuple[str, dict[str, Any]]] = []
        uid = 0
        for group, version, resource, kind, body in KINDS:
            api_version = f"{group}/{version}" if group else version
            obj = canaried({"apiVersion": api_version, "kind": kind,
                            "metadata": {"name": "x", "namespace": "dev",
                                         "labels": {"canary": "x"},
                                         "annotations": {"canary": "x"}}, **body})
            # The name is the object's identity, which decision logs carry (as the API
            # server's audit log does); everything else is content.
            obj["metadata"]["name"] = f"web-{kind.lower()}"
            for operation in ("CREATE", "UPDATE"):
                uid += 1
                answer = server.review("/validate", review(group, version, resource, kind,
                                                           obj, operation, uid))
                answers.append((kind, answer))
                mutated = server.review("/mutate", review(group, version, resource, kind,
                                                          obj, operation, uid))
                assert not mutated["allowed"], f"{kind}: the Fail patch policy denies"
                assert "its test does not hold" in mutated["status"]["message"]
                mutations.append((kind, mutated))
        audit = server.audit_lines()
    finally:
        server.stop()

    assert len(answers) == 2 * len(KINDS)
    for kind, answer in mutations:
        assert CANARY not in json.dumps(answer), f"{kind}: {answer['status']['message']}"
    for kind, answer in answers:
        message = answer.get("status", {}).get("message", "")
        assert not answer["allowed"], f"{kind}: the Fail policies deny"
        assert "could not be evaluated" in message, message
        assert CANARY not in json.dumps(answer), f"{kind}: {message}"
    every_failure = " ".join(a.get("status", {}).get("message", "") for _, a in answers)
    for words in ("int() failed", "duration() failed", "matches() failed",
                  "no such key (the key is computed from the input)",
                  "base64.decode() failed on (string): Error"):
        assert words in every_failure, f"the failure is still named: {words!r}"
    records = [r for r in caplog.records if r.name.startswith(("edgewarden", "cel", "uvicorn"))]
    assert records, "the server logged its evaluation failures"
    leaked = [r.getMessage() for r in caplog.records if CANARY in r.getMessage()]
    assert not leaked, leaked[:3]
    assert CANARY not in caplog.text
    assert CANARY not in json.dumps(audit)
