"""Old Ingress versions are judged as networking.k8s.io/v1, converted as the API server
converts them for a webhook with matchPolicy: Equivalent (offline in check and audit)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from webhook.offline.ingress_versions import ingress_as_v1, is_old_ingress

from .helpers import run

REPO = Path(__file__).resolve().parents[2]
POLICIES = str(REPO / "policies")

OLD = {
    "apiVersion": "extensions/v1beta1",
    "kind": "Ingress",
    "metadata": {"name": "shop", "namespace": "payments"},
    "spec": {
        "backend": {"serviceName": "fallback", "servicePort": 8080},
        "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
        "rules": [
            {"host": "shop.example.com", "http": {"paths": [
                {"path": "/", "backend": {"serviceName": "web", "servicePort": "http"}},
                {"path": "/api", "pathType": "Prefix",
                 "backend": {"serviceName": "api", "servicePort": 80}},
                {"path": "/static", "backend": {"resource": {
                    "apiGroup": "k8s.example.com", "kind": "StorageBucket", "name": "assets"}}},
            ]}},
            {"host": "empty.example.com"},
        ],
    },
}


def test_the_old_shape_becomes_v1_field_by_field() -> None:
    before = copy.deepcopy(OLD)
    converted = ingress_as_v1(OLD)
    assert before == OLD, "the input is not changed"
    assert converted["apiVersion"] == "networking.k8s.io/v1"
    spec = converted["spec"]
    assert "backend" not in spec
    assert spec["defaultBackend"] == {"service": {"name": "fallback", "port": {"number": 8080}}}
    paths = spec["rules"][0]["http"]["paths"]
    assert paths[0] == {"path": "/", "pathType": "ImplementationSpecific",
                        "backend": {"service": {"name": "web", "port": {"name": "http"}}}}
    assert paths[1]["pathType"] == "Prefix", "a pathType given is kept"
    assert paths[1]["backend"] == {"service": {"name": "api", "port": {"number": 80}}}
    assert paths[2]["backend"] == OLD["spec"]["rules"][0]["http"]["paths"][2]["backend"]
    assert spec["tls"] == OLD["spec"]["tls"] and spec["rules"][1] == {"host": "empty.example.com"}


def test_only_the_old_ingress_versions_are_converted() -> None:
    assert is_old_ingress(OLD)
    assert is_old_ingress({**OLD, "apiVersion": "networking.k8s.io/v1beta1"})
    assert not is_old_ingress({**OLD, "apiVersion": "networking.k8s.io/v1"})
    assert not is_old_ingress({**OLD, "kind": "Service", "apiVersion": "extensions/v1beta1"})


def test_audit_judges_an_old_ingress_of_a_cluster_dump(tmp_path: Path) -> None:
    state = tmp_path / "state.yaml"
    state.write_text(
        "apiVersion: v1\nkind: Namespace\n"
        "metadata: {name: payments, labels: {environment: production}}\n---\n"
        "apiVersion: extensions/v1beta1\nkind: Ingress\n"
        "metadata: {name: shop, namespace: payments}\n"
        "spec:\n  ingressClassName: nginx\n  rules:\n    - host: shop.example.com\n"
        "      http: {paths: [{path: /, backend: {serviceName: web, servicePort: 80}}]}\n")
    result = run("audit", "-p", POLICIES, "--cluster-state", str(state), "-o", "json",
                 "--fail-on-violation")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    (shop,) = report["results"]
    assert ("require-ingress-tls-in-production", "deny") in [
        (f["policy"], f["result"]) for f in shop["findings"]]
    assert "1 Ingress object(s) of extensions/v1beta1 judged as networking.k8s.io/v1" \
        in result.stderr
