"""The cluster as the end-to-end tests see it: the real API server, through the
``kubernetes`` client, and what the installed webhook recorded (its audit log)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from .installation import Installation, Mode

# namespace(labels=None) -> name: the `namespace` fixture (conftest.py).
NamespaceFactory = Callable[..., str]
T = TypeVar("T")

PRODUCTION = ("production", "prod")
INTERNAL_LB = "service.beta.kubernetes.io/aws-load-balancer-internal"
CONVERGE_SECONDS = 60.0


def eventually(check: Callable[[], T | None], what: str, timeout: float = CONVERGE_SECONDS,
               interval: float = 0.25) -> T:
    """Poll ``check`` until it returns something other than None; bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)


@dataclass(frozen=True)
class Refusal:
    """What the API server answered instead of creating the object."""

    status: int
    message: str


def _message(body: Any) -> str:
    try:
        return str(json.loads(body).get("message", body))
    except (TypeError, ValueError, AttributeError):
        return str(body)


def refusal(call: Callable[[], Any]) -> Refusal | None:
    """Run an API call; the refusal if the API server said no, None if it went through."""
    try:
        call()
    except ApiException as error:
        return Refusal(error.status, _message(error.body))
    return None


def service(name: str, type_: str = "ClusterIP", *, annotations: dict[str, str] | None = None,
            **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/part-of": "e2e"}}
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": type_,
            "selector": {"app": name},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
            **spec,
        },
    }


def ingress(name: str, host: str, *, tls_hosts: list[str] | None = None,
            class_name: str | None = "nginx") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "rules": [{
            "host": host,
            "http": {"paths": [{
                "path": "/",
                "pathType": "Prefix",
                "backend": {"service": {"name": "web", "port": {"number": 80}}},
            }]},
        }],
    }
    if class_name is not None:
        spec["ingressClassName"] = class_name
    if tls_hosts is not None:
        spec["tls"] = [{"hosts": tls_hosts, "secretName": f"{name}-tls"}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name},
        "spec": spec,
    }


@dataclass
class Cluster:
    api: client.ApiClient
    core: client.CoreV1Api
    networking: client.NetworkingV1Api
    admission: client.AdmissionregistrationV1Api
    installation: Installation

    @classmethod
    def connect(cls, installation: Installation) -> Cluster:
        api = config.new_client_from_config(config_file=str(installation.kubeconfig))
        return cls(api, client.CoreV1Api(api), client.NetworkingV1Api(api),
                   client.AdmissionregistrationV1Api(api), installation)

    def server_version(self) -> str:
        info = client.VersionApi(self.api).get_code(_request_timeout=10)
        return str(info.git_version)

    def delete_namespace(self, name: str) -> None:
        try:
            self.core.delete_namespace(name, propagation_policy="Background")
        except ApiException as error:
            if error.status != 404:
                raise

    def services_in(self, namespace: str) -> set[str]:
        return {s.metadata.name for s in self.core.list_namespaced_service(namespace).items}

    # -- what the webhook said and recorded -------------------------------------------

    def nodeport_dry_run(self, namespace: str, name: str) -> Refusal | None:
        return refusal(lambda: self.core.create_namespaced_service(
            namespace, service(name, "NodePort"), dry_run="All"))

    def audit_records(self, name: str | None = None) -> list[dict[str, Any]]:
        """The webhook's audit log (JSON lines), optionally for one object."""
        return self.installation.webhook_records(name)

    def wait_for_audit_record(self, namespace: str, name: str, policy: str) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for record in self.audit_records(name):
                if record.get("namespace") == namespace and record.get("policy") == policy:
                    return record
            return None

        return eventually(found, f"an audit record of {policy} for {namespace}/{name}")

    # -- waiting until the webhook's cache has caught up ------------------------------

    def wait_until_webhook_sees_production(self, namespace: str, mode: Mode) -> None:
        if mode == "enforce":
            def refused() -> Refusal | None:
                answer = self.nodeport_dry_run(namespace, f"probe-{uuid.uuid4().hex[:8]}")
                if answer is not None and "deny-nodeport-in-production" in answer.message:
                    return answer
                return None

            eventually(refused, f"the webhook refusing a NodePort in new namespace {namespace}")
            return

        def recorded() -> dict[str, Any] | None:
            name = f"probe-{uuid.uuid4().hex[:8]}"
            answer = self.nodeport_dry_run(namespace, name)
            assert answer is None, f"audit-only refused a dry-run NodePort: {answer}"
            # Replicas write their log a moment after answering (kind reads it from pods).
            for _ in range(5):
                for record in self.audit_records(name):
                    if record.get("policy") == "deny-nodeport-in-production":
                        return record
                time.sleep(0.5)
            return None

        eventually(recorded, f"an audit record of a NodePort dry-run in namespace {namespace}")

    def wait_until_webhook_sees_non_production(self, namespace: str, mode: Mode) -> None:
        if mode != "enforce":
            raise ValueError("audit-only tests use production namespaces only (see conftest)")

        def allowed() -> bool | None:
            answer = self.nodeport_dry_run(namespace, f"probe-{uuid.uuid4().hex[:8]}")
            return True if answer is None else None

        eventually(allowed, f"the webhook allowing a NodePort once {namespace} is relabelled")
