"""The server presents the generated certificate: verified by CA and hostname, else refused."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from webhook.certs.files import generate_certificates
from webhook.certs.tls import ServingCertificate
from webhook.errors import CertificateError

from .tlsserver import client_context, fetch_fingerprint, serve_tls


@pytest.fixture()
def generated(tmp_path: Path):
    return generate_certificates(tmp_path / "tls", service="edgewarden", namespace="edgewarden")


def test_client_with_the_ca_and_the_service_hostname_is_served(generated) -> None:
    cert = ServingCertificate(generated.cert_file, generated.key_file)
    with serve_tls(cert) as server:
        fetch_fingerprint(server.port, client_context(generated.ca_file))
        for name in ("edgewarden.edgewarden", "edgewarden.edgewarden.svc.cluster.local"):
            fetch_fingerprint(server.port, client_context(generated.ca_file), name)


def test_wrong_hostname_is_refused(generated) -> None:
    cert = ServingCertificate(generated.cert_file, generated.key_file)
    with serve_tls(cert) as server, pytest.raises(ssl.SSLCertVerificationError, match="match"):
        fetch_fingerprint(server.port, client_context(generated.ca_file), "other.edgewarden.svc")


def test_foreign_ca_is_refused(generated, tmp_path: Path) -> None:
    foreign = generate_certificates(
        tmp_path / "foreign", service="edgewarden", namespace="edgewarden"
    )
    cert = ServingCertificate(generated.cert_file, generated.key_file)
    with serve_tls(cert) as server, pytest.raises(ssl.SSLCertVerificationError):
        fetch_fingerprint(server.port, client_context(foreign.ca_file))


def test_server_refuses_tls_below_1_2(generated) -> None:
    cert = ServingCertificate(generated.cert_file, generated.key_file)
    assert cert.ssl_context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_missing_files_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="cannot read the serving certificate"):
        ServingCertificate(tmp_path / "tls.crt", tmp_path / "tls.key")


def test_mismatched_pair_is_a_clear_error(generated, tmp_path: Path) -> None:
    other = generate_certificates(tmp_path / "other", service="edgewarden", namespace="edgewarden")
    with pytest.raises(CertificateError, match="do not belong together"):
        ServingCertificate(generated.cert_file, other.key_file)
