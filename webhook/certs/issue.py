"""Issuing the webhook's CA and serving certificate with ``cryptography``.

The API server accepts a webhook only when its certificate chains to the ``caBundle`` of
the webhook configuration and names the Service as ``SERVICE.NAMESPACE.svc``. Everything
here is pure (no files, no cluster): :mod:`webhook.certs.files` writes what this issues and
:mod:`webhook.certs.bootstrap` keeps it in a Secret.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webhook.errors import CertificateError

KeyType = Literal["ecdsa", "rsa"]
KEY_TYPES: tuple[KeyType, ...] = ("ecdsa", "rsa")
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

DEFAULT_CA_DAYS = 3650
DEFAULT_SERVING_DAYS = 365
# Certificates start a little in the past: a node whose clock runs behind must not see a
# certificate that is "not yet valid" right after a rotation.
BACKDATE = datetime.timedelta(minutes=5)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def service_dns_names(service: str, namespace: str) -> list[str]:
    """The names the API server may use for ``service`` in ``namespace``; ``S.N.svc`` first."""
    return [
        f"{service}.{namespace}.svc",
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def generate_private_key(key_type: KeyType = "ecdsa") -> PrivateKey:
    if key_type == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise CertificateError(f"unknown key type {key_type!r}: use one of {', '.join(KEY_TYPES)}")


def key_type_of(key: PrivateKey) -> KeyType:
    return "rsa" if isinstance(key, rsa.RSAPrivateKey) else "ecdsa"


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def not_after(self) -> datetime.datetime:
        return self.cert.not_valid_after_utc

    @property
    def not_before(self) -> datetime.datetime:
        return self.cert.not_valid_before_utc


def issue_ca(
    *,
    common_name: str = "edgewarden-webhook-ca",
    days: int = DEFAULT_CA_DAYS,
    key_type: KeyType = "ecdsa",
    now: datetime.datetime | None = None,
) -> KeyPair:
    """A self-signed CA that may sign leaf certificates only (pathLen 0)."""
    _check_days(days)
    now = now or utcnow()
    key = generate_private_key(key_type)
    # A unique subject per CA: during a CA roll the old and the new CA sit side by side in
    # the caBundle, and verifiers look issuers up by name first.
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edgewarden"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} {now:%Y%m%dT%H%M%SZ}"),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert, key)


def issue_serving(
    ca: KeyPair,
    *,
    service: str,
    namespace: str,
    days: int = DEFAULT_SERVING_DAYS,
    key_type: KeyType = "ecdsa",
    hosts_extra: Iterable[str] = (),
    now: datetime.datetime | None = None,
) -> KeyPair:
    """A serving certificate for the webhook Service, signed by ``ca``.

    It never outlives its CA: a leaf valid past its issuer would fail verification early.
    """
    _check_days(days)
    if not service or not namespace:
        raise CertificateError("a service name and a namespace are both required")
    now = now or utcnow()
    key = generate_private_key(key_type)
    dns_names = service_dns_names(service, namespace)
    ips: list[x509.IPAddress] = []
    for host in hosts_extra:
        try:
            ips.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if host not in dns_names:
                dns_names.append(host)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])])
    names = x509.SubjectAlternativeName([*(x509.DNSName(n) for n in dns_names), *ips])
    cert = _leaf(ca, key, subject, now, days, ExtendedKeyUsageOID.SERVER_AUTH, names)
    return KeyPair(cert, key)


def issue_client(
    ca: KeyPair,
    *,
    common_name: str,
    organizations: Sequence[str] = (),
    days: int = DEFAULT_SERVING_DAYS,
    key_type: KeyType = "ecdsa",
    now: datetime.datetime | None = None,
) -> KeyPair:
    """A client certificate (``clientAuth`` only) signed by ``ca``: what the API server
    presents to a webhook that verifies its callers (``serve --client-ca``). Kubernetes
    reads the user name from the CN and groups from O, as for any client certificate."""
    _check_days(days)
    if not common_name:
        raise CertificateError("a client certificate needs a common name")
    now = now or utcnow()
    key = generate_private_key(key_type)
    subject = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
        + [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )
    cert = _leaf(ca, key, subject, now, days, ExtendedKeyUsageOID.CLIENT_AUTH)
    return KeyPair(cert, key)


def _leaf(
    ca: KeyPair,
    key: PrivateKey,
    subject: x509.Name,
    now: datetime.datetime,
    days: int,
    usage: x509.ObjectIdentifier,
    names: x509.SubjectAlternativeName | None = None,
) -> x509.Certificate:
    """A leaf certificate for one extended key usage, signed by ``ca``; it never outlives
    its CA (a leaf valid past its issuer would fail verification early)."""
    public = key.public_key()
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + datetime.timedelta(days=days), ca.not_after))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                # RSA key exchange needs keyEncipherment; an ECDSA key cannot encipher.
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if names is not None:
        builder = builder.add_extension(names, critical=False)
    return (
        builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )


def _check_days(days: int) -> None:
    if days < 1:
        raise CertificateError(f"validity must be at least one day, got {days}")


# --- reading PEM -------------------------------------------------------------------------


def load_certificates(pem: bytes, what: str = "certificate") -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as error:
        raise CertificateError(f"{what} is not PEM-encoded X.509: {error}") from None
    return certs


def load_private_key(pem: bytes, what: str = "private key") -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise CertificateError(f"{what} is not an unencrypted PEM private key: {error}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CertificateError(f"{what} must be an ECDSA or RSA key")
    return key


def load_key_pair(cert_pem: bytes, key_pem: bytes, what: str = "certificate") -> KeyPair:
    """The first certificate of ``cert_pem`` with its key; refuses a mismatched pair."""
    cert = load_certificates(cert_pem, what)[0]
    key = load_private_key(key_pem, f"{what} key")
    if not public_keys_match(cert, key):
        raise CertificateError(f"{what} and its private key do not belong together")
    return KeyPair(cert, key)


def public_keys_match(cert: x509.Certificate, key: PrivateKey) -> bool:
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return cert.public_key().public_bytes(der, fmt) == key.public_key().public_bytes(der, fmt)


def is_signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def pem_bundle(certs: Sequence[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def ca_bundle_b64(pem: bytes) -> str:
    """The ``caBundle`` field of a webhook configuration: base64 of PEM."""
    return base64.b64encode(pem).decode("ascii")


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def life_left_fraction(cert: x509.Certificate, now: datetime.datetime) -> float:
    """How much of the validity is still ahead: 1.0 when new, 0.0 at or after expiry."""
    total = (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds()
    left = (cert.not_valid_after_utc - now).total_seconds()
    return max(0.0, min(1.0, left / total)) if total > 0 else 0.0


def dns_names_of(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san.get_values_for_type(x509.DNSName))


def ip_addresses_of(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
