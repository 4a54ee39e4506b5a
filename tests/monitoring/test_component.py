"""The kustomize monitoring component (deploy/monitoring) on top of the production overlay:
it builds, its objects are valid (the prometheus-operator CRDs for ServiceMonitor and
PrometheusRule), and the ServiceMonitor scrapes a port that exists and is let in."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.checks import Manifest, schema_problems
from tests.deploy.conftest import REPO, kubectl, one
from tests.deploy.test_manifests import NEWEST_KUBERNETES, OLDEST_KUBERNETES


def build_with_monitoring(directory: Path) -> list[Manifest]:
    """`kubectl kustomize` of an overlay made of production + deploy/monitoring, as the
    component's own comment tells users to write it."""
    overlay = directory / "with-monitoring"
    overlay.mkdir()
    production = os.path.relpath(REPO / "deploy" / "overlays" / "production", overlay)
    monitoring = os.path.relpath(REPO / "deploy" / "monitoring", overlay)
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [production], "components": [monitoring],
    }))
    result = subprocess.run([kubectl(), "kustomize", str(overlay)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, NEWEST_KUBERNETES])
def test_the_component_builds_valid_objects(tmp_path: Path, version: str) -> None:
    objects = build_with_monitoring(tmp_path)
    kinds = {o["kind"] for o in objects}
    assert {"ServiceMonitor", "PrometheusRule"} <= kinds
    problems = schema_problems(objects, version)
    assert not problems, "\n".join(problems)


def test_the_service_monitor_scrapes_the_metrics_port(tmp_path: Path) -> None:
    objects = build_with_monitoring(tmp_path)
    service = one(objects, "Service", "edgewarden")
    monitor = one(objects, "ServiceMonitor", "edgewarden")
    deployment = one(objects, "Deployment", "edgewarden")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items())
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [
        service["metadata"]["namespace"]]
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["honorLabels"] is True, "the metrics' endpoint/namespace labels must win"
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    metrics = ports[endpoint["port"]]
    container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container_ports[metrics["targetPort"]] == metrics["port"] == 8080
    args = container["args"]
    assert args[args.index("--metrics-port") + 1] == "8080"
    policy = one(objects, "NetworkPolicy", "edgewarden")
    let_in = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert let_in == {"https", "metrics"}


def test_the_dashboard_config_map_holds_the_dashboard(tmp_path: Path) -> None:
    objects = build_with_monitoring(tmp_path)
    configmap = one(objects, "ConfigMap", "edgewarden-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    source = (REPO / "deploy" / "monitoring" / "dashboard.json").read_text()
    assert configmap["data"] == {"dashboard.json": source}
