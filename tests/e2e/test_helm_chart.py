"""The Helm chart, rendered the way `helm install` would render it for this very cluster
(`helm template --kube-version <the server's>`), applied with
`kubectl apply --dry-run=server --validate=strict`: the API server checks every object
against its own schemas and runs admission on it, stores nothing. Each value set the chart
tests render (tests/helm/chart.py) goes through; the ones with cert-manager or
prometheus-operator objects get those CRDs installed first, from the pinned releases that
scripts/kube-binaries fetches."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import yaml

from tests.deploy.checks import MONITORING_CRDS, PROMETHEUS_OPERATOR_CRDS
from tests.helm.chart import VALUE_SETS, helm, run_helm
from tests.kube.wait import crds_established

from .installation import REPO, Installation

CHART = REPO / "deploy" / "helm" / "edgewarden"
NEEDS_CERT_MANAGER = {"cert-manager", "cert-manager-own-issuer"}
NEEDS_MONITORING = {"monitoring"}


@pytest.fixture(scope="module")
def server_version(installation: Installation) -> str:
    version = json.loads(installation.kubectl("version", "-o", "json").stdout)["serverVersion"]
    return str(version["gitVersion"]).lstrip("v").split("+")[0]


@pytest.fixture(scope="module")
def monitoring_installed(installation: Installation) -> None:
    if not PROMETHEUS_OPERATOR_CRDS.is_dir():
        pytest.skip("the prometheus-operator CRDs are not fetched: run scripts/monitoring-crds "
                    f"(expected {PROMETHEUS_OPERATOR_CRDS})")
    for file in MONITORING_CRDS.values():
        installation.kubectl("apply", "--server-side", "-f",
                             str((PROMETHEUS_OPERATOR_CRDS / file).resolve()))
    crds_established(installation.kubectl, "crd/servicemonitors.monitoring.coreos.com",
                         "crd/prometheusrules.monitoring.coreos.com")


def rendered(values: dict[str, Any], namespace: str, kube_version: str) -> str:
    helm()  # skips, saying how to build it, when helm is not built
    result = run_helm("template", "edgewarden", str(CHART), "--namespace", namespace,
                      "--kube-version", kube_version, values=values)
    assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
    return result.stdout


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_the_api_server_accepts_every_object_the_chart_renders(
    installation: Installation, request: pytest.FixtureRequest, server_version: str,
    value_set: str,
) -> None:
    if value_set in NEEDS_CERT_MANAGER:
        request.getfixturevalue("cert_manager_crds_installed")
    if value_set in NEEDS_MONITORING:
        request.getfixturevalue("monitoring_installed")
    _, values = VALUE_SETS[value_set]
    # A namespace of its own (created for real: a server-side dry run of the chart's own
    # Namespace object creates nothing for the namespaced objects to land in).
    namespace = f"chart-{value_set}-{uuid.uuid4().hex[:6]}"[:63]
    installation.kubectl("create", "namespace", namespace, "--save-config")
    try:
        manifest = rendered(values, namespace, server_version)
        objects = [doc for doc in yaml.safe_load_all(manifest) if doc]
        assert objects
        result = installation.kubectl("apply", "--dry-run=server", "--validate=strict",
                                      "-f", "-", input=manifest, check=False)
        assert result.returncode == 0, result.stderr
        accepted = [line for line in result.stdout.splitlines()
                    if line.endswith("(server dry run)")]
        assert len(accepted) == len(objects), result.stdout
        assert "Warning" not in result.stderr, result.stderr
    finally:
        installation.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
