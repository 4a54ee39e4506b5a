"""The control plane's certificates: one CA for serving and client certificates, the API
server's serving certificate for 127.0.0.1, client certificates (the API server takes the
user from the CN and the groups from O), and the service-account token signing key."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=2)  # a test session, with room for a clock skew
BACKDATE = datetime.timedelta(minutes=5)
# The names a client inside a cluster would use for the API server, and loopback.
API_SERVER_NAMES = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local")
API_SERVER_IPS = ("127.0.0.1", "10.0.0.1")  # 10.0.0.1: the `kubernetes` Service's ClusterIP


@dataclass(frozen=True)
class Pair:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def write(self, folder: Path, stem: str) -> tuple[Path, Path]:
        cert_file, key_file = folder / f"{stem}.crt", folder / f"{stem}.key"
        cert_file.write_bytes(self.cert_pem)
        key_file.write_bytes(self.key_pem)
        key_file.chmod(0o600)
        return cert_file, key_file


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _builder(subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey,
             ) -> x509.CertificateBuilder:
    now = _now()
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + VALIDITY))


def new_ca(common_name: str) -> Pair:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (_builder(name, name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return Pair(cert, key)


def _leaf(ca: Pair, subject: x509.Name, usage: x509.ObjectIdentifier,
          san: list[x509.GeneralName] | None = None) -> Pair:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (_builder(subject, ca.cert.subject, key.public_key())
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return Pair(builder.sign(ca.key, hashes.SHA256()), key)


def serving_certificate(ca: Pair) -> Pair:
    """For the API server at 127.0.0.1 (and the in-cluster names, for completeness)."""
    san: list[x509.GeneralName] = [x509.DNSName(n) for n in API_SERVER_NAMES]
    san += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in API_SERVER_IPS]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
    return _leaf(ca, subject, ExtendedKeyUsageOID.SERVER_AUTH, san)


def client_certificate(ca: Pair, user: str, groups: tuple[str, ...] = ()) -> Pair:
    """A client certificate the API server maps to ``user`` in ``groups``."""
    subject = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
        + [x509.NameAttribute(NameOID.COMMON_NAME, user)]
    )
    return _leaf(ca, subject, ExtendedKeyUsageOID.CLIENT_AUTH)


def service_account_key(folder: Path) -> tuple[Path, Path]:
    """The key pair that signs (private) and verifies (public) service-account tokens."""
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = folder / "sa.key", folder / "sa.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    private.chmod(0o600)
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public
