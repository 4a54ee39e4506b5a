"""Issue 23's "done when": install the chart, upgrade it, uninstall it, against a real
kube-apiserver, while a client creates an admissible Service every 100 ms; no create is
refused, and nothing edgewarden made is left. Also issue 21's webhook-level matchConditions:
a ClusterIP Service CREATE never reaches /mutate, a LoadBalancer one does (counted by the
server).

See conftest.py for how the Deployment's pods run here."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kube.wait import crds_established
from tests.support import api_client, eventually

from .conftest import CHART, NAMESPACE, Release, Replica, ServiceProxy

pytestmark = pytest.mark.e2e

OWNED = "app.kubernetes.io/managed-by=edgewarden"
NAMES = {"validatingwebhookconfiguration": "edgewarden-validating",
         "mutatingwebhookconfiguration": "edgewarden-mutating"}
CLIENT_NAMESPACE = "lifecycle-apps"
PRODUCTION = "lifecycle-production"
INTERNAL_LB = "service.beta.kubernetes.io/aws-load-balancer-internal"


def shipped_policies() -> list[str]:
    names = [yaml.safe_load(p.read_text())["metadata"]["name"]
             for p in sorted((CHART / "policies").glob("*.yaml"))
             if not p.name.endswith(".test.yaml")]
    assert "require-ingress-class" in names, names
    return names


def chart_settings(proxy: ServiceProxy, *extra: str) -> list[str]:
    """The values of this test's release: its own namespace object, the report CRDs and the
    continuous audit (so there are reports to remove), and the Service's address."""
    return ["--set", "namespace.create=true", "--set", "crds.policyReports=true",
            "--set-json", f'extraArgs=["--webhook-url","{proxy.url}","--cert-host",'
                          f'"127.0.0.1","--audit-interval","3s"]', *extra]


def service(name: str, kind: str = "ClusterIP", node_port: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "NodePort" if node_port else kind,
                            "ports": [{"port": 80, "targetPort": 8080}],
                            "selector": {"app": name}}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


class Client:
    """Creates an admissible ClusterIP Service every 100 ms until stopped; keeps every
    refusal (status and the first line of the message)."""

    def __init__(self, kubeconfig: Path) -> None:
        self.api = client.CoreV1Api(api_client(kubeconfig))
        self.created = 0
        self.refusals: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="client")

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        for number in range(100_000):
            if self._stop.is_set():
                return
            started = time.monotonic()
            try:
                self.api.create_namespaced_service(CLIENT_NAMESPACE,
                                                   service(f"app-{number}"),
                                                   _request_timeout=30)
                self.created += 1
            except ApiException as error:
                first = (error.body or "").splitlines()[0][:300] if error.body else ""
                self.refusals.append(f"app-{number}: {error.status} {error.reason} {first}")
            self._stop.wait(max(0.0, 0.1 - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


def configurations(plane: Any) -> dict[str, dict[str, Any]]:
    found = {}
    for kind, name in NAMES.items():
        result = plane.kubectl("get", kind, name, "-o", "yaml", check=False)
        if result.returncode == 0:
            found[kind] = yaml.safe_load(result.stdout)
    return found


def registered(plane: Any, timeout_seconds: int, url: str) -> bool:
    """Both configurations are there, labelled, with a caBundle, at the Service's address
    and with ``timeout_seconds``: what a replica of that release registers."""
    found = configurations(plane)
    if len(found) != 2:
        return False
    for document in found.values():
        labels = document["metadata"].get("labels") or {}
        if labels.get("app.kubernetes.io/managed-by") != "edgewarden":
            return False
        ours = [w for w in document["webhooks"] if w["name"] != "approve-exception.edgewarden.dev"]
        if not ours:
            return False
        for webhook in ours:
            if (not webhook["clientConfig"].get("caBundle")
                    or not webhook["clientConfig"].get("url", "").startswith(url)
                    or webhook["timeoutSeconds"] != timeout_seconds):
                return False
    return True


def denied(api: client.CoreV1Api, name: str) -> str:
    """The message of the API server's refusal of a NodePort Service in production."""
    try:
        api.create_namespaced_service(PRODUCTION, service(name, node_port=True))
    except ApiException as error:
        assert error.status in (400, 403), error
        return str(error.body)
    api.delete_namespaced_service(name, PRODUCTION)
    raise AssertionError("a NodePort Service in a production namespace was admitted")


def leftovers(plane: Any) -> list[str]:
    """Everything edgewarden made that is still there."""
    left = []
    for kind, name in NAMES.items():
        if plane.kubectl("get", kind, name, check=False).returncode == 0:
            left.append(f"{kind}/{name}")
    for kinds in ("validatingwebhookconfigurations,mutatingwebhookconfigurations",
                  "resourcequotas", "policyreports,clusterpolicyreports"):
        listed = plane.kubectl("get", kinds, "-A", "-l", OWNED, "-o", "name").stdout.split()
        left.extend(listed)
    claims = plane.kubectl("get", "claims.edgewarden.dev", "-n", NAMESPACE, "-l", OWNED,
                           "-o", "name", check=False)
    left.extend(claims.stdout.split() if claims.returncode == 0 else [])
    for kind, name in (("lease", "edgewarden-leader"), ("secret", "edgewarden-tls")):
        if plane.kubectl("get", kind, name, "-n", NAMESPACE, check=False).returncode == 0:
            left.append(f"{kind}/{name}")
    return left


def test_install_upgrade_and_uninstall_refuse_nothing_and_leave_nothing(
        kube_control_plane: Any, service_proxy: ServiceProxy, tmp_path: Path) -> None:
    plane = kube_control_plane
    admin = client.CoreV1Api(api_client(plane.kubeconfig))
    for name, labels in ((CLIENT_NAMESPACE, {}), (PRODUCTION, {"environment": "production"}),
                         ("lifecycle-lb", {})):
        admin.create_namespace({"metadata": {"name": name, "labels": labels}})

    # --- install -------------------------------------------------------------------------
    v1 = Release(chart_settings(service_proxy), tmp_path / "v1")
    kinds = {d["kind"] for d in v1.objects}
    assert not kinds & {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}, (
        "the chart must render no webhook configuration by default")
    assert "--register-webhooks" in v1.pod_spec["containers"][0]["args"]
    plane.kubectl("apply", "--server-side", "-f", str(v1.manifest))
    crds_established(plane.kubectl, "crd/policyreports.wgpolicyk8s.io")
    token = plane.kubectl("create", "token", "edgewarden", "-n", NAMESPACE,
                          "--duration", "2h").stdout.strip()
    service_account = plane.kubeconfig_for("system:serviceaccount:edgewarden:edgewarden",
                                           name="lifecycle-sa", token=token)
    first = Replica("edgewarden-a", v1, tmp_path / "a", service_account)
    second: Replica | None = None
    traffic = Client(plane.kubeconfig)
    try:
        first.start()
        service_proxy.add(first.port)
        eventually(lambda: registered(plane, 5, service_proxy.url), timeout=60,
                   what=lambda: f"registration; log:\n{first.process.log_file.read_text()[-3000:]}")
        versions = {k: d["metadata"]["resourceVersion"] for k, d in configurations(plane).items()}
        traffic.start()
        assert "deny-nodeport-in-production" in denied(admin, "np-1")

        # matchConditions: a ClusterIP CREATE does not reach /mutate, a LoadBalancer does.
        before = first.requests("mutate")
        admin.create_namespaced_service("lifecycle-lb", service("plain"))
        time.sleep(1.0)  # a call the API server made would be counted by now
        assert first.requests("mutate") == before
        made = admin.create_namespaced_service("lifecycle-lb", service("lb", "LoadBalancer"))
        assert first.requests("mutate") == before + 1
        assert INTERNAL_LB in (made.metadata.annotations or {})

        # --- upgrade: another policy set and other arguments; B is up before A stops ------
        enabled = [n for n in shipped_policies() if n != "require-ingress-class"]
        v2 = Release(chart_settings(service_proxy, "--set", "webhooks.timeoutSeconds=7",
                                    "--set-json", f"policies.enabled={json.dumps(enabled)}"),
                     tmp_path / "v2")
        plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(v2.manifest))
        second = Replica("edgewarden-b", v2, tmp_path / "b", service_account)
        second.start()
        service_proxy.add(second.port)
        # The leader's passes since (every 10 s, and on each change of input) wrote nothing:
        # what it registered is what it wants, as the API server stores it.
        assert {k: d["metadata"]["resourceVersion"]
                for k, d in configurations(plane).items()} == versions
        service_proxy.remove(first.port)  # terminating: out of the endpoints first
        first.stop()
        eventually(lambda: registered(plane, 7, service_proxy.url), timeout=60,
                   what="the upgraded replica to register its configurations")
        assert "deny-nodeport-in-production" in denied(admin, "np-2")
        eventually(lambda: plane.kubectl("get", "resourcequotas", "-A", "-l", OWNED,
                                         "-o", "name").stdout.strip(),
                   timeout=60, what="a managed ResourceQuota (something for uninstall)")

        # --- uninstall: the pre-delete hook's command, then the release's objects ---------
        job = v2.hook_job()["spec"]["template"]["spec"]["containers"][0]
        hook = subprocess.run([sys.executable, "-m", "webhook.cli", *job["args"]],
                              env=second.env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=180, check=False)
        assert hook.returncode == 0, hook.stderr + hook.stdout
        assert "removed ValidatingWebhookConfiguration edgewarden-validating" in hook.stdout
        kept = [d for d in v2.objects if d["kind"] not in ("CustomResourceDefinition",
                                                             "Namespace")]
        plane.kubectl("delete", "--wait=false", "-f", "-", input=yaml.safe_dump_all(kept))
        time.sleep(2.0)  # the pods run on until the kubelet has stopped them
        service_proxy.remove(second.port)
        second.stop()
        traffic.stop()
    finally:
        traffic.stop()
        for replica in (first, second):
            if replica is not None:
                replica.stop()

    assert traffic.created >= 50, f"the client created only {traffic.created} Services"
    assert traffic.refusals == [], f"{len(traffic.refusals)} refused: {traffic.refusals[:5]}"
    assert leftovers(plane) == []

