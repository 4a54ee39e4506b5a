"""Certificates against a real API server: `certs bootstrap` and `serve --manage-certs`
with the real Secret, RBAC and webhook configurations; and a certificate rotation (a
renewal, then a whole CA roll) while admissions run, none of which may fail."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from kubernetes import client, config

from webhook.certs.files import write_pair
from webhook.certs.issue import (
    KeyPair,
    fingerprint,
    ip_addresses_of,
    is_signed_by,
    issue_ca,
    issue_serving,
    load_key_pair,
    pem_bundle,
)

from .helpers import Cluster, NamespaceFactory, eventually, refusal, service
from .installation import MUTATING, VALIDATING, WEBHOOK_NAMESPACE
from .kubeplane import until
from .local import LocalInstallation

SECRET = "edgewarden-tls"
LOOPBACK = ("--host", "127.0.0.1")


def secret(local: LocalInstallation) -> dict[str, Any]:
    out = local.kubectl("get", "secret", SECRET, "-n", WEBHOOK_NAMESPACE, "-o", "json").stdout
    found: dict[str, Any] = json.loads(out)
    return found


def ca_bundles(local: LocalInstallation) -> set[str]:
    bundles = set()
    for kind, name in (("validatingwebhookconfiguration", VALIDATING),
                       ("mutatingwebhookconfiguration", MUTATING)):
        bundles.add(local.kubectl("get", kind, name, "-o",
                                  "jsonpath={.webhooks[0].clientConfig.caBundle}").stdout)
    return bundles


def served_certificate(port: int) -> x509.Certificate:
    """The certificate the server presents to a new connection right now."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # we look at it; the API server judges it
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


@pytest.fixture
def back_to_generated_certificates(local: LocalInstallation) -> Iterator[None]:
    """After the test: the Secret gone, the files of `certs generate`, the usual server."""
    mode = local.mode
    yield
    local.stop_webhook()
    local.kubectl("delete", "secret", SECRET, "-n", WEBHOOK_NAMESPACE, "--ignore-not-found")
    local.register(mode)
    local.run_server(local.serve_args(mode))
    local.wait_until_answering(mode)


def test_certs_bootstrap_then_serve_manage_certs_with_the_shipped_rbac(
    local: LocalInstallation, back_to_generated_certificates: None, tmp_path: Path
) -> None:
    local.stop_webhook()
    # As an init container does: as the webhook's ServiceAccount, with the shipped RBAC.
    local.edgewarden("certs", "bootstrap", "--out", str(tmp_path / "init"), *LOOPBACK)

    stored = secret(local)
    assert stored["type"] == "kubernetes.io/tls"
    data = {key: base64.b64decode(value) for key, value in stored["data"].items()}
    assert set(data) == {"tls.crt", "tls.key", "ca.crt", "ca.key"}
    assert stored["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "edgewarden"
    # Both configurations now tell the API server to trust the Secret's CA...
    assert ca_bundles(local) == {base64.b64encode(data["ca.crt"]).decode()}
    # ...which signed a certificate naming the address the API server calls.
    serving = load_key_pair(data["tls.crt"], data["tls.key"])
    [ca] = x509.load_pem_x509_certificates(data["ca.crt"])
    assert is_signed_by(serving.cert, ca)
    assert "127.0.0.1" in ip_addresses_of(serving.cert)
    assert (tmp_path / "init" / "tls.crt").read_bytes() == data["tls.crt"]

    version = stored["metadata"]["resourceVersion"]
    local.run_server(["serve", "--policies", "policies", "--host", "127.0.0.1",
                      "--port", str(local.port), "--manage-certs",
                      "--cert-dir", str(tmp_path / "served"), "--cert-host", "127.0.0.1",
                      "--audit-log", str(local.audit_log)])
    # The API server trusts what the server serves: it calls it and gets its verdicts.
    local.wait_until_answering("enforce")
    assert fingerprint(served_certificate(local.port)) == fingerprint(serving.cert)
    # A second replica starting finds everything current and writes nothing.
    assert secret(local)["metadata"]["resourceVersion"] == version


# --- rotation under load -------------------------------------------------------------


@dataclass
class Load:
    """Admissions running in the background: every one must get the answer it would get
    with nobody touching the certificates (allowed, or refused by our policy)."""

    cluster_file: Path
    allowed_namespace: str
    production_namespace: str
    answered: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    phase: str = "start"
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        core = client.CoreV1Api(config.new_client_from_config(str(self.cluster_file)))
        while not self.stop.is_set():
            self._one_round(core, f"load-{uuid.uuid4().hex[:8]}")

    def _one_round(self, core: client.CoreV1Api, name: str) -> None:
        phase = self.phase
        created = refusal(lambda: core.create_namespaced_service(
            self.allowed_namespace, service(name)))
        if created is not None:
            self.failures.append(f"[{phase}] create {name}: {created}")
        nodeport = refusal(lambda: core.create_namespaced_service(
            self.production_namespace, service(name, "NodePort"), dry_run="All"))
        if nodeport is None or "deny-nodeport-in-production" not in nodeport.message:
            self.failures.append(f"[{phase}] NodePort dry-run {name}: {nodeport}")
        self.answered[phase] += 2

    def wait_for_answers(self, phase: str, count: int = 10) -> None:
        until(lambda: self.answered[phase] >= count or self.failures,
              f"{count} admissions in phase {phase}", 60)


def serving_from(ca: KeyPair) -> KeyPair:
    return issue_serving(ca, service="edgewarden", namespace=WEBHOOK_NAMESPACE,
                         hosts_extra=["127.0.0.1"])


def switch_serving(local: LocalInstallation, pair: KeyPair) -> None:
    """Swap the files the server reads (as kubelet updates a mounted Secret), and wait
    until new connections get the new certificate."""
    write_pair(local.tls_dir / "tls.crt", local.tls_dir / "tls.key", pair)
    until(lambda: fingerprint(served_certificate(local.port)) == fingerprint(pair.cert),
          "the server to serve the new certificate", 60, interval=0.2)


def publish_bundle(local: LocalInstallation, cluster: Cluster, namespace: NamespaceFactory,
                   cas: list[KeyPair]) -> None:
    """Make both caBundles trust ``cas``, and wait until the API server uses them.

    A configuration change reaches the API server's admission through its own watch, a
    moment later, and nothing reports it. So the same patch also excludes a fresh
    production namespace: once NodePorts pass there and LoadBalancers stay unannotated,
    the API server runs with the new configurations.

    The API server keeps connections to a webhook alive and reuses them for as long as
    the caBundle stays the same, and a kept connection was verified when it was opened:
    it would hide a served certificate the API server cannot trust. So each bundle also
    carries a throwaway CA that signs nothing: its bytes are new, the API server builds a
    new transport, and every admission after this verifies the certificate served now.
    """
    marker = namespace()
    throwaway = issue_ca(common_name="edgewarden-e2e-signs-nothing").cert
    bundle = base64.b64encode(pem_bundle([*(ca.cert for ca in cas), throwaway])).decode()
    for kind, name in (("validatingwebhookconfiguration", VALIDATING),
                       ("mutatingwebhookconfiguration", MUTATING)):
        local.kubectl("patch", kind, name, "--type=json", "-p", json.dumps([
            {"op": "replace", "path": "/webhooks/0/clientConfig/caBundle", "value": bundle},
            {"op": "add", "path": "/webhooks/0/namespaceSelector/matchExpressions/0/values/-",
             "value": marker},
        ]))

    def in_use() -> bool | None:
        if cluster.nodeport_dry_run(marker, "marker") is not None:
            return None
        judged = cluster.core.create_namespaced_service(
            marker, service("marker", "LoadBalancer"), dry_run="All")
        return True if not (judged.metadata.annotations or {}) else None

    eventually(in_use, "the API server to use the new configurations")


def test_a_renewal_and_a_ca_roll_while_admissions_run_fail_none(
    local: LocalInstallation, cluster: Cluster, namespace: NamespaceFactory
) -> None:
    """The CA roll as `serve --manage-certs` does it (docs/certs.md), each step done to the
    files and configurations by hand so the test needs no clock: after every step the API
    server connects anew (see publish_bundle), and every admission still gets its normal
    answer."""
    ca_file, ca_key = local.tls_dir / "ca.crt", local.tls_dir / "ca.key"
    old_ca = load_key_pair(ca_file.read_bytes(), ca_key.read_bytes(), "CA")
    new_ca = issue_ca()
    load = Load(local.kubeconfig, namespace({"team": "load"}), namespace())
    workers = [threading.Thread(target=load.run, daemon=True) for _ in range(2)]

    def step(phase: str, bundle: list[KeyPair], serving: KeyPair | None = None) -> None:
        load.phase = phase
        if serving is not None:
            switch_serving(local, serving)
        publish_bundle(local, cluster, namespace, bundle)
        load.wait_for_answers(phase)

    for worker in workers:
        worker.start()
    try:
        load.wait_for_answers("start")
        step("renewal", [old_ca], serving_from(old_ca))  # new serving cert, same CA
        step("new CA published", [old_ca, new_ca])  # both trusted; old CA still serves
        step("served by the new CA", [old_ca, new_ca], serving_from(new_ca))
        step("old CA retired", [new_ca])
        write_pair(ca_file, ca_key, new_ca)  # what register() publishes from now on
    finally:
        load.stop.set()
        for worker in workers:
            worker.join(30)
    assert load.failures == [], load.failures[:5]
    assert all(count >= 10 for count in load.answered.values()), load.answered
