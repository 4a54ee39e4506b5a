"""Render deploy/helm/edgewarden with the helm that scripts/kube-binaries builds, as a user
would (`helm template` with a values file), and the value sets the tests run it with."""

from __future__ import annotations

import copy
import functools
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.checks import Manifest, cached_tool
from tests.deploy.conftest import REPO

CHART = REPO / "deploy" / "helm" / "edgewarden"
RELEASE = "edgewarden"
NAMESPACE = "edgewarden"
# The oldest Kubernetes the chart claims (Chart.yaml kubeVersion), given to helm explicitly:
# `helm template` otherwise assumes the version compiled into the helm binary.
KUBE_VERSION = "1.29.0"

# A policy of one's own, valid for the real loader: Ingresses must not use the class
# "public" in production.
CUSTOM_POLICY = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata:
  name: deny-public-ingress-class
spec:
  mode: Enforce
  failurePolicy: Fail
  match:
    kinds: [Ingress]
    namespaceSelector:
      matchExpressions:
        - {key: environment, operator: In, values: [production]}
  validations:
    - expression: "!has(object.spec.ingressClassName) || object.spec.ingressClassName != 'public'"
      message: the ingress class "public" is not allowed in production
"""

# name -> (namespace, values): what the schema, CLI and consistency tests render.
VALUE_SETS: dict[str, tuple[str, dict[str, Any]]] = {
    "defaults": (NAMESPACE, {}),
    "audit-only": (NAMESPACE, {"auditOnly": True}),
    "cert-manager": (NAMESPACE, {"certificates": {"mode": "cert-manager"}}),
    "cert-manager-own-issuer": (NAMESPACE, {"certificates": {
        "mode": "cert-manager",
        "certManager": {"issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer"},
                        "duration": "720h", "renewBefore": "240h"},
    }}),
    "monitoring": (NAMESPACE, {
        "serviceMonitor": {"enabled": True, "interval": "15s", "scrapeTimeout": "5s",
                           "labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "Platform"}},
        "webhooks": {"timeoutSeconds": 10},
    }),
    # Issue 23: OpenShift's restricted SCC (no fixed user or group), the runbook links at
    # one's own copy of the docs. (Namespaces excluded by label need static webhook
    # configurations, which every value set here is not: test_chart_overrides.py.)
    "overrides": (NAMESPACE, {
        "podSecurityContext": {"runAsUser": None, "runAsGroup": None, "fsGroup": None},
        "securityContext": {"runAsUser": None, "runAsGroup": None},
        "prometheusRule": {"enabled": True,
                           "runbookBaseUrl": "https://wiki.example.com/ops/edgewarden"},
    }),
    "minimal": (NAMESPACE, {
        "replicaCount": 1,
        "metrics": {"port": None},
        "probes": {"port": None},  # the probes on the HTTPS port, as before --probe-port
        "networkPolicy": {"enabled": False},
        "podDisruptionBudget": {"enabled": False},
        "topologySpreadConstraints": [],
        "webhooks": {"failurePolicy": "Ignore"},
    }),
    "scheduling-and-image": (NAMESPACE, {
        "image": {"repository": "registry.example.com/platform/edgewarden",
                  "digest": "sha256:" + "ab" * 32, "pullPolicy": "Always"},
        "imagePullSecrets": [{"name": "registry-credentials"}],
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": {"kubernetes.io/os": "linux", "node-role.example.com/platform": ""},
        "tolerations": [{"key": "platform", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]},
            ]}]}}},
        "topologySpreadConstraints": [{
            "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "edgewarden"}},
        }],
        "podAnnotations": {"example.com/owner": "platform"},
        "podLabels": {"team": "platform"},
        "serviceAccount": {"annotations": {"example.com/role": "edgewarden"}},
        "resources": {"requests": {"cpu": "200m", "memory": "256Mi"},
                      "limits": {"cpu": "2", "memory": "1Gi"}},
        "podDisruptionBudget": {"enabled": True, "minAvailable": "50%"},
        "replicaCount": 3,
        "internalLoadBalancerFlavour": "gcp",
        "logLevel": "debug",
        "extraArgs": ["--max-body-bytes", "8388608"],
    }),
    "exceptions": (NAMESPACE, {"exceptions": {
        "enabled": True, "namespaces": ["policy-exceptions"], "maxDays": 30}}),
    "own-policies": (NAMESPACE, {"policies": {
        "enabled": ["deny-nodeport-in-production", "internal-loadbalancer"],
        "custom": {"deny-public-ingress-class.yaml": CUSTOM_POLICY},
    }}),
    "other-namespace": ("platform-admission", {
        "namespace": {"create": True},
        "webhooks": {"excludeNamespaces": ["platform-system"], "timeoutSeconds": 3},
        "networkPolicy": {"controlPlaneCIDRs": ["172.16.0.0/28"],
                          "metricsFrom": [{"namespaceSelector": {"matchLabels": {
                              "kubernetes.io/metadata.name": "monitoring"}}}]},
    }),
}


def helm() -> Path:
    return cached_tool("helm")


def run_helm(*args: str, values: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    """``helm ARGS -f VALUES`` (values as a file, the way users pass them)."""
    with tempfile.TemporaryDirectory() as scratch:
        command = [str(helm()), *args]
        if values:
            path = Path(scratch) / "values.yaml"
            path.write_text(yaml.safe_dump(values))
            command += ["-f", str(path)]
        return subprocess.run(command, capture_output=True, text=True, timeout=120,
                              check=False, cwd=REPO)


@functools.cache
def _render(values_json: str, namespace: str, kube_version: str) -> tuple[Manifest, ...]:
    result = run_helm("template", RELEASE, str(CHART), "--namespace", namespace,
                      "--kube-version", kube_version, values=json.loads(values_json))
    assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def render(values: dict[str, Any] | None = None, *, namespace: str = NAMESPACE,
           kube_version: str = KUBE_VERSION) -> list[Manifest]:
    """The objects `helm template` renders (cached per input; copies)."""
    key = json.dumps(values or {}, sort_keys=True)
    return copy.deepcopy(list(_render(key, namespace, kube_version)))


def render_value_set(name: str) -> tuple[str, list[Manifest]]:
    namespace, values = VALUE_SETS[name]
    return namespace, render(values, namespace=namespace)


def render_error(values: dict[str, Any], *, namespace: str = NAMESPACE) -> str:
    """helm's complaint about ``values``; the render must fail."""
    result = run_helm("template", RELEASE, str(CHART), "--namespace", namespace,
                      "--kube-version", KUBE_VERSION, values=values)
    assert result.returncode != 0, f"helm template accepted {values}"
    return result.stderr
