"""The Gateway API schemas shipped for the static checks are what the generator makes from
the CRDs of the pinned release, and the checks use them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import webhook.cli  # noqa: F401  (registers every command on the app)
from webhook.cli.app import app

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "scripts" / "trim_gateway_schemas.py"
CRDS = Path.home() / ".cache/edgewarden/kube/current/gateway-api-crds/standard"
PINNED = (ROOT / "tests/kube/gateway-api/go.mod").read_text()


def test_the_packaged_gateway_schemas_are_what_the_script_generates() -> None:
    if not CRDS.is_dir():
        pytest.skip(f"{CRDS} is missing: run scripts/kube-binaries")
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def test_the_schemas_come_from_the_pinned_release() -> None:
    source = json.loads((ROOT / "webhook/policy/schemas/gateway-api-source.json").read_text())
    assert f"sigs.k8s.io/gateway-api {source['gateway-api']}" in PINNED
    assert source["channel"] == "standard"


CONFLICT = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: front, namespace: shop}
spec:
  rules: [{host: shop.example.com}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: copy, namespace: other}
spec:
  hostnames: [shop.example.com]
"""


def test_audit_reports_both_sides_of_a_host_two_namespaces_already_serve(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.yaml"
    state.write_text(CONFLICT)
    result = CliRunner().invoke(
        app, ["audit", "--policies", str(ROOT / "policies/unique-ingress-hosts.yaml"),
              "--cluster-state", str(state), "-o", "json"], catch_exceptions=False)
    report = json.loads(result.stdout)
    messages = {r["resource"]["name"]: [f["message"] for f in r["findings"]]
                for r in report["results"]}
    assert messages["front"] == [
        "this host and path belongs to another namespace: choose another host or path, or "
        "ask the namespace that holds it to hand it over (shop.example.com (whole host) is "
        "held by HTTPRoute other/copy)"]
    assert "held by Ingress shop/front" in messages["copy"][0]
