"""Issue 24's two exposure gaps, judged by `edgewarden check` with the shipped policies as a
CI job runs it: a catch-all or wildcard Ingress or route in production, and F5 NGINX Ingress
Controller snippets, are denied; the same objects granted, or without snippets, pass."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

NAMESPACES = [
    {"apiVersion": "v1", "kind": "Namespace",
     "metadata": {"name": "shop", "labels": {"environment": "production"}}},
    {"apiVersion": "v1", "kind": "Namespace",
     "metadata": {"name": "edge", "labels": {"environment": "production"},
                  "annotations": {"edgewarden.dev/allowed-hostnames": "*"}}},
]


def _edgewarden(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The installed ``edgewarden`` command, run from the repository root as CI runs it."""
    script = Path(sys.executable).with_name("edgewarden")
    command = [str(script)] if script.exists() else [shutil.which("edgewarden") or "edgewarden"]
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "HOME": str(tmp_path)}
    return subprocess.run([*command, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def ingress(name: str, namespace: str, host: str | None, **annotations: str) -> dict[str, object]:
    rule: dict[str, object] = {"http": {"paths": [{
        "path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}
    if host is not None:
        rule["host"] = host
    spec: dict[str, object] = {"ingressClassName": "nginx", "rules": [rule]}
    if host is not None and not host.startswith("*"):
        spec["tls"] = [{"hosts": [host], "secretName": f"{name}-tls"}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
            "spec": spec}


def route(name: str, namespace: str, hostnames: list[str]) -> dict[str, object]:
    spec: dict[str, object] = {"parentRefs": [{"name": "shared", "namespace": "gateways"}],
                               "rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}
    if hostnames:
        spec["hostnames"] = hostnames
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def test_check_denies_catch_alls_wildcards_and_nginx_org_snippets(tmp_path: Path) -> None:
    manifests = tmp_path / "release.yaml"
    manifests.write_text(yaml.safe_dump_all([
        *NAMESPACES,
        ingress("catch-all", "shop", None),
        ingress("tenants", "shop", "*.apps.example.com"),
        route("any-host", "shop", []),
        ingress("cafe", "shop", "cafe.example.com",
                **{"nginx.org/location-snippets": "add_header X-Test 1;"}),
        ingress("fallback", "edge", None),
        ingress("web", "shop", "web.example.com",
                **{"nginx.org/client-max-body-size": "4m"}),
    ]))
    result = _edgewarden("check", "-f", str(manifests), "-o", "json", tmp_path=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    judged = {(r["resource"]["name"], f["policy"]): f["result"] for r in report["results"]
              for f in r["findings"]}
    # Other shipped policies have their say too (TLS in production, the opt-in host grant):
    # these are the three new ones'.
    new = {"restrict-wildcard-ingress-hosts", "restrict-wildcard-route-hostnames",
           "deny-nginx-org-snippets"}
    denied = {key for key, result in judged.items() if result == "deny" and key[1] in new}
    assert judged[("fallback", "restrict-wildcard-ingress-hosts")] == "pass"
    assert judged[("web", "deny-nginx-org-snippets")] == "pass"
    assert denied == {
        ("catch-all", "restrict-wildcard-ingress-hosts"),
        ("tenants", "restrict-wildcard-ingress-hosts"),
        ("any-host", "restrict-wildcard-route-hostnames"),
        ("cafe", "deny-nginx-org-snippets"),
    }
