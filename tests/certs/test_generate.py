"""`edgewarden certs generate` and the certificates it issues."""

from __future__ import annotations

import base64
import contextlib
import ssl
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from typer.testing import CliRunner

import webhook.cli  # noqa: F401  (registers every command on the app)
from webhook.certs.files import generate_dev_certificates
from webhook.cli.app import app

runner = CliRunner()
SERVICE_NAMES = [
    "payments-webhook.platform.svc",
    "payments-webhook",
    "payments-webhook.platform",
    "payments-webhook.platform.svc.cluster.local",
]


def generate(out: Path, *extra: str):
    return runner.invoke(
        app,
        [
            "certs",
            "generate",
            "--service",
            "payments-webhook",
            "--namespace",
            "platform",
            "--out",
            str(out),
            *extra,
        ],
    )


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_generate_writes_a_chain_that_openssl_verifies(tmp_path: Path) -> None:
    result = generate(tmp_path / "tls")
    assert result.exit_code == 0, result.output
    check = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(tmp_path / "tls/ca.crt"),
            str(tmp_path / "tls/tls.crt"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip().endswith(": OK")
    for name in SERVICE_NAMES:  # and with openssl's hostname check
        named = subprocess.run(
            [
                "openssl",
                "verify",
                "-CAfile",
                str(tmp_path / "tls/ca.crt"),
                "-verify_hostname",
                name,
                str(tmp_path / "tls/tls.crt"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert named.returncode == 0, (name, named.stdout, named.stderr)


def test_generate_prints_the_ca_bundle_alone_on_stdout(tmp_path: Path) -> None:
    result = generate(tmp_path / "tls")
    assert base64.b64decode(result.stdout.strip()) == (tmp_path / "tls/ca.crt").read_bytes()


def test_python_ssl_verifies_the_chain_and_the_service_names(tmp_path: Path) -> None:
    generate(tmp_path / "tls")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(tmp_path / "tls/ca.crt"))
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(tmp_path / "tls/tls.crt", tmp_path / "tls/tls.key")
    for name in SERVICE_NAMES:  # a real in-memory handshake per name
        client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
        client = context.wrap_bio(client_in, client_out, server_hostname=name)
        server = served.wrap_bio(server_in, server_out, server_side=True)
        for _ in range(10):  # bounded handshake pumping
            for side in (client, server):
                with contextlib.suppress(ssl.SSLWantReadError):
                    side.do_handshake()
            server_in.write(client_out.read())
            client_in.write(server_out.read())
        assert client.getpeercert()["subject"] == (
            (("commonName", "payments-webhook.platform.svc"),),
        )


def test_sans_and_key_usages(tmp_path: Path) -> None:
    generate(tmp_path / "tls")
    leaf, ca = cert(tmp_path / "tls/tls.crt"), cert(tmp_path / "tls/ca.crt")
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(san.get_values_for_type(x509.DNSName)) == sorted(SERVICE_NAMES)
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert leaf.public_key().curve.name == "secp256r1"
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign


def test_rsa_on_request_and_validity_in_days(tmp_path: Path) -> None:
    result = generate(tmp_path / "tls", "--key-type", "rsa", "--days", "30")
    assert result.exit_code == 0, result.output
    leaf = cert(tmp_path / "tls/tls.crt")
    assert isinstance(leaf.public_key(), rsa.RSAPublicKey)
    assert leaf.public_key().key_size == 2048
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert 30 <= lifetime.days <= 31


def test_key_files_are_private_and_certificates_readable(tmp_path: Path) -> None:
    generate(tmp_path / "tls")
    for name, mode in {
        "ca.key": 0o600,
        "tls.key": 0o600,
        "ca.crt": 0o644,
        "tls.crt": 0o644,
    }.items():
        assert (tmp_path / "tls" / name).stat().st_mode & 0o777 == mode, name


def test_existing_files_are_not_overwritten_without_force(tmp_path: Path) -> None:
    generate(tmp_path / "tls")
    before = (tmp_path / "tls/ca.crt").read_bytes()
    refused = generate(tmp_path / "tls")
    assert refused.exit_code != 0
    assert "refusing to overwrite" in refused.output and "--force" in refused.output
    assert "Traceback" not in refused.output
    assert (tmp_path / "tls/ca.crt").read_bytes() == before
    forced = generate(tmp_path / "tls", "--force")
    assert forced.exit_code == 0, forced.output
    assert (tmp_path / "tls/ca.crt").read_bytes() != before


@pytest.mark.parametrize("bad", [["--key-type", "dsa"], ["--days", "0"]])
def test_bad_options_are_refused_without_traceback(tmp_path: Path, bad: list[str]) -> None:
    result = generate(tmp_path / "tls", *bad)
    assert result.exit_code != 0
    assert "Traceback" not in result.output


def test_dev_certificates_name_localhost_and_are_reused(tmp_path: Path) -> None:
    first = generate_dev_certificates(tmp_path / "dev")
    leaf = cert(first.cert_file)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert "edgewarden.edgewarden.svc" in san.get_values_for_type(x509.DNSName)
    again = generate_dev_certificates(tmp_path / "dev")
    assert again == first and cert(again.cert_file) == leaf
    assert base64.b64decode(first.ca_bundle_b64) == first.ca_file.read_bytes()


def test_dev_certificates_are_replaced_when_they_do_not_fit(tmp_path: Path) -> None:
    first = generate_dev_certificates(tmp_path / "dev")
    first_leaf = cert(first.cert_file)
    other = generate_dev_certificates(tmp_path / "dev", service="other")
    assert cert(other.cert_file) != first_leaf
    assert cert(other.cert_file).subject.rfc4514_string() == "CN=other.edgewarden.svc"
    first.key_file.write_bytes(b"broken")
    repaired = generate_dev_certificates(tmp_path / "dev")
    assert repaired.key_file.read_bytes() != b"broken"
