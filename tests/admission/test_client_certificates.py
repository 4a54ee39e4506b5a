"""serve --client-ca: only callers with a certificate that CA signed may ask for a verdict;
probes stay open; the CA file is reloaded like the serving certificate. Real TLS, with
client certificates issued by webhook.certs.issue."""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support import eventually
from webhook.certs.files import GeneratedCertificates
from webhook.certs.issue import KeyPair, issue_ca, issue_client

from .harness import SNI, RunningServer, base_settings, load_review, start_server


@dataclass
class Client:
    cert: Path
    key: Path


def _write_client(folder: Path, name: str, ca: KeyPair) -> Client:
    pair = issue_client(ca, common_name="kube-apiserver", organizations=["system:masters"])
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    cert.write_bytes(pair.cert_pem)
    key.write_bytes(pair.key_pem)
    return Client(cert, key)


def _replace(path: Path, data: bytes) -> None:
    staged = path.with_suffix(".new")
    staged.write_bytes(data)
    os.replace(staged, path)  # atomic, as kubelet's ..data swap is


@pytest.fixture
def client_ca(tmp_path: Path) -> KeyPair:
    ca = issue_ca(common_name="apiserver-clients")
    (tmp_path / "client-ca.crt").write_bytes(ca.cert_pem)
    return ca


@pytest.fixture
def server(certificates: GeneratedCertificates, tmp_path: Path,
           client_ca: KeyPair) -> Iterator[RunningServer]:
    settings = base_settings(certificates, tmp_path, client_ca=tmp_path / "client-ca.crt",
                             cert_poll_seconds=0.05)
    running = start_server(settings, certificates.ca_file)
    yield running
    running.stop()


def _post(server: RunningServer, client: Client | None, path: str = "/validate") -> httpx.Response:
    context = ssl.create_default_context(cafile=str(server.ca_file))
    if client is not None:
        context.load_cert_chain(client.cert, client.key)
    body = orjson.dumps(load_review("nodeport-create-payments.json"))
    with httpx.Client(base_url=server.base_url, verify=context, timeout=10) as http:
        return http.post(path, content=body, headers={"content-type": "application/json"},
                         extensions=SNI)


def test_a_caller_with_a_certificate_the_client_ca_signed_gets_a_verdict(
    server: RunningServer, client_ca: KeyPair, tmp_path: Path
) -> None:
    apiserver = _write_client(tmp_path, "apiserver", client_ca)

    response = _post(server, apiserver)

    assert response.status_code == 200
    assert response.json()["response"]["allowed"] is False  # a production NodePort


@pytest.mark.parametrize("path", ["/validate", "/mutate"])
def test_a_caller_without_a_certificate_is_refused_but_probes_answer(
    server: RunningServer, path: str
) -> None:
    response = _post(server, None, path)

    assert response.status_code == 403
    assert response.json()["reason"] == "Forbidden"
    assert "client certificate" in response.json()["message"]
    assert server.get("/healthz").status_code == 200  # kubelet's probes present none
    assert server.get("/readyz").status_code == 200
    assert server.metric("edgewarden_requests_total", endpoint=path[1:],
                         result="unauthenticated") >= 1
    assert server.metric("edgewarden_connection_limit_hits_total",
                         limit="client_certificate") >= 1


def test_a_certificate_another_ca_signed_fails_the_handshake(
    server: RunningServer, tmp_path: Path
) -> None:
    mallory = _write_client(tmp_path, "mallory", issue_ca(common_name="mallory-ca"))

    with pytest.raises(httpx.TransportError):
        _post(server, mallory)
    eventually(lambda: server.metric("edgewarden_connection_limit_hits_total",
                                     limit="tls_refused") >= 1, what="the refusal counted")


def test_a_rotated_client_ca_applies_to_the_next_handshake(
    server: RunningServer, client_ca: KeyPair, tmp_path: Path
) -> None:
    old_client = _write_client(tmp_path, "old", client_ca)
    assert _post(server, old_client).status_code == 200
    new_ca = issue_ca(common_name="apiserver-clients-2")
    new_client = _write_client(tmp_path, "new", new_ca)

    _replace(tmp_path / "client-ca.crt", new_ca.cert_pem)

    def refuses_old() -> bool:
        try:
            _post(server, old_client)
        except httpx.TransportError:
            return True
        return False

    eventually(refuses_old, what="the old client CA no longer trusted")
    assert _post(server, new_client).status_code == 200


# --- with --probe-port: the webhook port requires the certificate at the handshake -------

@pytest.fixture
def probes_apart(certificates: GeneratedCertificates, tmp_path: Path,
                 client_ca: KeyPair) -> Iterator[RunningServer]:
    """serve --client-ca FILE --probe-port N: the shape of the chart and kustomize base."""
    settings = base_settings(certificates, tmp_path, client_ca=tmp_path / "client-ca.crt",
                             probe_port=0, cert_poll_seconds=0.05)
    running = start_server(settings, certificates.ca_file)
    yield running
    running.stop()


def _metric(server: RunningServer, name: str, **labels: str) -> float:
    """One sample, read in-process (the HTTPS port would want a certificate)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = server.runtime.state.metrics.render().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v
                                           for k, v in labels.items()):
                return float(sample.value)
    return 0.0


@pytest.mark.parametrize("path", ["/validate", "/mutate", "/healthz"])
def test_with_probes_apart_a_caller_without_a_certificate_fails_the_handshake(
    probes_apart: RunningServer, path: str
) -> None:
    with pytest.raises(httpx.TransportError):
        _post(probes_apart, None, path)
    eventually(lambda: _metric(probes_apart, "edgewarden_connection_limit_hits_total",
                               limit="tls_refused") >= 1, what="the refusal counted")
    assert _metric(probes_apart, "edgewarden_requests_total", endpoint=path[1:],
                   result="unauthenticated") == 0, "refused before any HTTP was read"
    assert probes_apart.probe("/readyz").status_code == 200  # the kubelet's own listener
    assert probes_apart.probe("/healthz").status_code == 200


def test_with_probes_apart_the_api_servers_certificate_gets_a_verdict(
    probes_apart: RunningServer, client_ca: KeyPair, tmp_path: Path
) -> None:
    apiserver = _write_client(tmp_path, "apiserver", client_ca)

    response = _post(probes_apart, apiserver)

    assert response.status_code == 200
    assert response.json()["response"]["allowed"] is False  # a production NodePort
    assert probes_apart.runtime.certificate.requires_clients
