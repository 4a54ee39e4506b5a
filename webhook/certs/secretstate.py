"""The certificate Secret's content, parsed and checked: what the manager reasons about."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from webhook.certs.files import CA_CERT, CA_KEY, TLS_CERT, TLS_KEY
from webhook.certs.issue import (
    KeyPair,
    ca_bundle_b64,
    is_signed_by,
    load_certificates,
    load_key_pair,
    load_private_key,
    pem_bundle,
    public_keys_match,
)
from webhook.cluster.cert_store import StoredSecret
from webhook.errors import CertificateError

MANAGED_BY = ("app.kubernetes.io/managed-by", "edgewarden")
GENERATION = "edgewarden.dev/ca-bundle-generation"
BUNDLE_SINCE = "edgewarden.dev/ca-bundle-since"
SERVING_SINCE = "edgewarden.dev/serving-since"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass(frozen=True)
class CertState:
    """A parsed, consistent Secret."""

    bundle: tuple[x509.Certificate, ...]
    signing: KeyPair
    serving: KeyPair
    generation: int
    bundle_since: datetime.datetime
    serving_since: datetime.datetime

    @property
    def bundle_pem(self) -> bytes:
        return pem_bundle(self.bundle)

    @property
    def ca_bundle_b64(self) -> str:
        return ca_bundle_b64(self.bundle_pem)

    def to_secret(self, resource_version: str | None) -> StoredSecret:
        return StoredSecret(
            data={
                TLS_CERT: self.serving.cert_pem,
                TLS_KEY: self.serving.key_pem,
                CA_CERT: self.bundle_pem,
                CA_KEY: self.signing.key_pem,
            },
            annotations={
                GENERATION: str(self.generation),
                BUNDLE_SINCE: self.bundle_since.isoformat(),
                SERVING_SINCE: self.serving_since.isoformat(),
            },
            labels=dict([MANAGED_BY]),
            resource_version=resource_version,
        )


def current_namespace(default: str = "edgewarden") -> str:
    """The pod's namespace (its service account says), for defaults in the cluster."""
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or default
    except OSError:
        return default


def parse_secret(stored: StoredSecret) -> CertState:
    """Read a managed Secret; raises CertificateError when it is not a consistent set."""
    data = stored.data
    missing = [k for k in (TLS_CERT, TLS_KEY, CA_CERT, CA_KEY) if not data.get(k)]
    if missing:
        raise CertificateError(f"the Secret lacks {', '.join(missing)}")
    bundle = tuple(load_certificates(data[CA_CERT], "ca.crt"))
    key = load_private_key(data[CA_KEY], "ca.key")
    signing = next((c for c in bundle if public_keys_match(c, key)), None)
    if signing is None:
        raise CertificateError("ca.key belongs to no certificate in ca.crt")
    serving = load_key_pair(data[TLS_CERT], data[TLS_KEY], "tls.crt")
    if not any(is_signed_by(serving.cert, ca) for ca in bundle):
        raise CertificateError("tls.crt is signed by no CA in ca.crt")
    annotations = stored.annotations
    return CertState(
        bundle=bundle,
        signing=KeyPair(signing, key),
        serving=serving,
        generation=int(annotations.get(GENERATION, "1") or 1),
        bundle_since=_time(annotations.get(BUNDLE_SINCE), signing.not_valid_before_utc),
        serving_since=_time(annotations.get(SERVING_SINCE), serving.not_before),
    )


def _time(value: str | None, default: datetime.datetime) -> datetime.datetime:
    try:
        return datetime.datetime.fromisoformat(value) if value else default
    except ValueError:
        return default
