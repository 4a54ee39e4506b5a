"""Squatting, the authentication side: ``serve --client-ca`` with the API server's admission
configuration, for real.

kube-apiserver is restarted with ``--admission-control-config-file`` naming an
AdmissionConfiguration whose webhook kubeconfig holds a client certificate for the
webhook's ``host:port`` (docs/certs.md, "Authenticating the API server"); three replicas
run with ``--client-ca`` and ``--probe-port`` behind the proxy. The API server's calls go
through (its creates are judged and mutated); a review sent straight at the same URL
without a certificate, or with one another CA signed, is refused in the TLS handshake,
before any HTTP. The API server is restarted without the flag afterwards.
"""

from __future__ import annotations

import http.client
import json
import ssl
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.kube.controlplane import ControlPlane
from webhook.certs.issue import KeyPair, issue_ca, issue_client

from .fixtures import (
    ReplicaSet,
    WebhookCertificates,
    admission_configuration,
    load_balancer,
    restart_apiserver_with,
)

INTERNAL_LB = "service.beta.kubernetes.io/aws-load-balancer-internal"


@pytest.fixture
def client_ca(tmp_path: Path) -> KeyPair:
    return issue_ca(common_name="edgewarden-apiserver-clients")


@pytest.fixture
def authenticated_set(replica_set: Callable[..., ReplicaSet], plane: ControlPlane,
                      client_ca: KeyPair, tmp_path: Path) -> Iterator[ReplicaSet]:
    ca_file = tmp_path / "client-ca.crt"
    ca_file.write_bytes(client_ca.cert_pem)
    replicas = replica_set(serve_args=("--client-ca", str(ca_file)), started_now=False)
    apiserver = issue_client(client_ca, common_name="kube-apiserver")
    config = admission_configuration(tmp_path / "admission", f"127.0.0.1:{replicas.proxy.port}",
                                     apiserver.cert_pem, apiserver.key_pem)
    restart_apiserver_with(plane, config)
    try:
        yield replicas.start()
    finally:
        replicas.stop()
        restart_apiserver_with(plane, None)


def review(namespace: str) -> dict[str, object]:
    """A fabricated AdmissionReview: a LoadBalancer CREATE that would hold a place."""
    name = f"squat-{uuid.uuid4().hex[:6]}"
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.uuid4()), "operation": "CREATE", "namespace": namespace, "name": name,
        "kind": {"group": "", "version": "v1", "kind": "Service"},
        "resource": {"group": "", "version": "v1", "resource": "services"},
        "userInfo": {"username": "mallory"},
        "object": {**load_balancer(name), "metadata": {"name": name, "namespace": namespace}},
    }}


def post_review(url_port: int, ca_file: Path, body: dict[str, object],
                client: KeyPair | None, folder: Path) -> int:
    """POST to /validate through the proxy; the HTTP status, or raise on a TLS refusal."""
    context = ssl.create_default_context(cafile=str(ca_file))
    if client is not None:
        cert, key = folder / f"{uuid.uuid4().hex}.crt", folder / f"{uuid.uuid4().hex}.key"
        cert.write_bytes(client.cert_pem)
        key.write_bytes(client.key_pem)
        context.load_cert_chain(cert, key)
    connection = http.client.HTTPSConnection("127.0.0.1", url_port, context=context,
                                             timeout=30)
    try:
        connection.request("POST", "/validate", json.dumps(body),
                           {"Content-Type": "application/json"})
        return connection.getresponse().status
    finally:
        connection.close()


def tls_refusals(replicas: ReplicaSet) -> int:
    total = 0.0
    for replica in replicas.replicas:
        for line in replica.metrics().splitlines():
            if line.startswith('edgewarden_connection_limit_hits_total{limit="tls_refused"}'):
                total += float(line.rsplit(" ", 1)[1])
    return int(total)


def unauthenticated_answers(replicas: ReplicaSet) -> int:
    total = 0.0
    for replica in replicas.replicas:
        for line in replica.metrics().splitlines():
            if line.startswith("edgewarden_requests_total{") and "unauthenticated" in line:
                total += float(line.rsplit(" ", 1)[1])
    return int(total)


def test_the_api_server_presents_its_certificate_and_a_caller_without_one_fails_at_tls(
    authenticated_set: ReplicaSet, plane: ControlPlane, client_ca: KeyPair,
    webhook_certificates: WebhookCertificates, tmp_path: Path,
) -> None:
    replicas = authenticated_set  # started: the API server's NodePort probe was refused
    namespace = replicas.namespace()
    created = plane.kubectl("-n", namespace, "create", "-f", "-", "-o", "json",
                            input=json.dumps(load_balancer("web")))
    stored = json.loads(created.stdout)
    assert stored["metadata"]["annotations"][INTERNAL_LB] == "true", "/mutate was called"
    before = tls_refusals(replicas)

    # Each attempt is a new connection: round robin sends them to every replica in turn.
    attempts = 2 * len(replicas.replicas)
    for _ in range(attempts):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            post_review(replicas.proxy.port, webhook_certificates.ca_file, review(namespace),
                        None, tmp_path)
    mallory = issue_client(issue_ca(common_name="mallory-ca"), common_name="kube-apiserver")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        post_review(replicas.proxy.port, webhook_certificates.ca_file, review(namespace),
                    mallory, tmp_path)

    assert tls_refusals(replicas) - before >= attempts + 1
    assert unauthenticated_answers(replicas) == 0, "no HTTP was read from them"
    # The certificate is the door, not the route: one the client CA signed gets a verdict.
    friend = issue_client(client_ca, common_name="a-script-with-the-apiservers-credentials")
    assert post_review(replicas.proxy.port, webhook_certificates.ca_file, review(namespace),
                       friend, tmp_path) == 200
    # And the API server's reviews are still judged after all that.
    production = replicas.namespace(labels={"environment": "production"})
    refused = plane.kubectl("-n", production, "create", "service", "nodeport", "np",
                            "--tcp=80:8080", check=False)
    assert refused.returncode != 0 and "deny-nodeport-in-production" in refused.stderr
