"""The chart and the kustomize overlays render the same installation: given the matching
values, the same objects with the same content (labels aside), and in particular the same
Validating/MutatingWebhookConfigurations."""

from __future__ import annotations

import copy
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.checks import Manifest, parse_with_the_real_cli
from tests.deploy.conftest import REPO, kubectl, rendered
from tests.deploy.test_manifests import COMPARED, normalized

from .chart import render

# Values that make the chart render what the overlay renders. The namespace is created by
# the overlays; Helm's convention is `--create-namespace` (or namespace.create), and the
# separate metrics port is the chart's default where the overlays have none.
AS_THE_OVERLAY = {"namespace": {"create": True}, "metrics": {"port": None}}
PAIRS = {
    "production": AS_THE_OVERLAY,
    "audit-only": {**AS_THE_OVERLAY, "auditOnly": True},
    "cert-manager": {**AS_THE_OVERLAY, "certificates": {"mode": "cert-manager"}},
}
WEBHOOK_KINDS = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
HASHED = re.compile(r"^(edgewarden-policies)-[a-z0-9]{10}$")


def installed(objects: list[Manifest]) -> list[Manifest]:
    """What `helm install` applies: the hooks (the uninstall Job) apart; kustomize users run
    `edgewarden uninstall` themselves (docs/install.md)."""
    return [o for o in objects if "helm.sh/hook" not in (o["metadata"].get("annotations") or {})]


def static_overlay(overlay: str, folder: Path) -> list[Manifest]:
    """deploy/overlays/<overlay> with deploy/components/static-webhooks."""
    folder.mkdir()
    (folder / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(REPO / "deploy" / "overlays" / overlay, folder)],
        "components": [os.path.relpath(REPO / "deploy" / "components" / "static-webhooks",
                                       folder)]}))
    result = subprocess.run([kubectl(), "kustomize", str(folder)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def key(obj: Manifest) -> tuple[str, str]:
    return obj["kind"], HASHED.sub(r"\1", obj["metadata"]["name"])


def params(args: list[str]) -> dict[str, Any]:
    """What the real CLI makes of ``args`` (so `--namespace edgewarden`, the default, equals
    leaving it out)."""
    return parse_with_the_real_cli(list(args))


def comparable(objects: list[Manifest]) -> dict[tuple[str, str], Manifest]:
    """Each object without what legitimately differs: the labels each tool adds (Helm's
    chart/instance/version, kustomize's managed-by), the ConfigMap name hash kustomize
    appends, the chart's policy checksum annotation; container args become what the CLI
    parses them into."""
    out = {}
    for obj in copy.deepcopy(objects):
        metadata = obj["metadata"]
        metadata["name"] = key(obj)[1]
        labels = metadata.pop("labels", {})
        if obj["kind"] == "Namespace":  # the Pod Security labels are the point of it
            metadata["labels"] = {k: v for k, v in labels.items()
                                  if k.startswith("pod-security.kubernetes.io/")}
        if obj["kind"] == "Deployment":
            template = obj["spec"]["template"]
            template["metadata"].pop("annotations", None)
            spec = template["spec"]
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                container["args"] = params(container["args"])
            for volume in spec["volumes"]:
                if "configMap" in volume:
                    volume["configMap"]["name"] = HASHED.sub(r"\1", volume["configMap"]["name"])
        out[key(obj)] = obj
    return out


def test_chart_and_overlay_render_the_same_static_webhook_configurations(
        tmp_path: Path) -> None:
    """webhooks.registration=static and deploy/components/static-webhooks (production: the
    component joins an overlay's own patches only when listed inside it)."""
    values = {**AS_THE_OVERLAY, "webhooks": {"registration": "static"}}
    chart, kustomized = render(values), static_overlay("production", tmp_path / "static")
    for kind in WEBHOOK_KINDS:
        [ours] = [o for o in chart if o["kind"] == kind]
        [theirs] = [o for o in kustomized if o["kind"] == kind]
        assert ours["metadata"]["name"] == theirs["metadata"]["name"]
        assert ours["metadata"].get("annotations") == theirs["metadata"].get("annotations")
        # Field by field first (a readable failure), then the whole webhook entries.
        assert [normalized(h) for h in ours["webhooks"]] == [
            normalized(h) for h in theirs["webhooks"]], kind
        assert ours["webhooks"] == theirs["webhooks"], kind
        assert {"rules", "failurePolicy", "namespaceSelector", "sideEffects",
                "timeoutSeconds", "clientConfig"} <= set(COMPARED)
    assert comparable(installed(chart)) == comparable(kustomized)


@pytest.mark.parametrize("overlay", sorted(PAIRS))
def test_chart_and_overlay_render_the_same_objects(overlay: str) -> None:
    chart = comparable(installed(render(PAIRS[overlay])))
    kustomized = comparable(rendered(overlay))
    assert sorted(chart) == sorted(kustomized)
    for name in chart:
        assert chart[name] == kustomized[name], f"{name} differs"


def test_chart_without_the_created_namespace_is_the_overlay_without_its_namespace() -> None:
    chart = comparable(installed(render({"metrics": {"port": None}})))
    kustomized = comparable(rendered("production"))
    assert set(kustomized) - set(chart) == {("Namespace", "edgewarden")}


def test_chart_with_monitoring_equals_the_overlay_with_the_monitoring_component(
    tmp_path: Path,
) -> None:
    """production + deploy/monitoring (kustomize) and the chart with its metrics port,
    ServiceMonitor, PrometheusRule and dashboard: the same objects, from the same rules file
    and dashboard."""
    overlay = tmp_path / "with-monitoring"
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
    kustomized = comparable([d for d in yaml.safe_load_all(result.stdout) if d])
    chart = comparable(installed(render({
        "namespace": {"create": True}, "metrics": {"port": 8080},
        "serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True},
        "grafanaDashboard": {"enabled": True},
    })))
    assert sorted(chart) == sorted(kustomized)
    for name in chart:
        assert chart[name] == kustomized[name], f"{name} differs"
    assert ("PrometheusRule", "edgewarden") in chart and ("ServiceMonitor", "edgewarden") in chart
