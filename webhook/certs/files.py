"""Certificates on disk: the folder layout the server reads, written atomically.

File names follow a ``kubernetes.io/tls`` Secret mounted as a volume (``tls.crt``,
``tls.key``, ``ca.crt``) so the server reads a generated folder and a mounted Secret alike.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from webhook.certs.issue import (
    DEFAULT_CA_DAYS,
    DEFAULT_SERVING_DAYS,
    KeyPair,
    KeyType,
    ca_bundle_b64,
    dns_names_of,
    ip_addresses_of,
    is_signed_by,
    issue_ca,
    issue_serving,
    life_left_fraction,
    load_certificates,
    load_key_pair,
    service_dns_names,
    utcnow,
)
from webhook.errors import CertificateError

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
TLS_CERT = "tls.crt"
TLS_KEY = "tls.key"
KEY_MODE = 0o600
CERT_MODE = 0o644


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` in one rename so a reader never sees half a file; ``mode`` applies
    before any byte is written, so a key is never readable by others even briefly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_pair(cert_file: Path, key_file: Path, pair: KeyPair) -> None:
    # Key first: a reader polling between the two renames sees a mismatched pair, which the
    # serving side refuses and retries, never a new key served with the old certificate.
    write_atomic(key_file, pair.key_pem, KEY_MODE)
    write_atomic(cert_file, pair.cert_pem, CERT_MODE)


@dataclass(frozen=True)
class GeneratedCertificates:
    ca_file: Path
    ca_key_file: Path
    cert_file: Path
    key_file: Path
    ca_bundle_b64: str


@dataclass(frozen=True)
class DevCertificates:
    ca_file: Path
    cert_file: Path
    key_file: Path
    ca_bundle_b64: str


def generate_certificates(
    folder: Path,
    *,
    service: str,
    namespace: str,
    days: int = DEFAULT_SERVING_DAYS,
    ca_days: int | None = None,
    key_type: KeyType = "ecdsa",
    hosts_extra: Iterable[str] = (),
    force: bool = False,
) -> GeneratedCertificates:
    """Write a new CA and serving certificate into ``folder``.

    Refuses to replace existing files unless ``force``: overwriting a CA silently would
    break every webhook configuration whose caBundle still names the old one.
    """
    folder = Path(folder)
    paths = {name: folder / name for name in (CA_CERT, CA_KEY, TLS_CERT, TLS_KEY)}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not force:
        raise CertificateError(
            f"refusing to overwrite {', '.join(existing)}: pass --force to replace them "
            "(the webhook configurations' caBundle must then be updated too)"
        )
    if folder.exists() and not folder.is_dir():
        raise CertificateError(f"{folder} exists and is not a folder")
    ca = issue_ca(days=max(ca_days or DEFAULT_CA_DAYS, days), key_type=key_type)
    serving = issue_serving(
        ca,
        service=service,
        namespace=namespace,
        days=days,
        key_type=key_type,
        hosts_extra=hosts_extra,
    )
    try:
        write_pair(paths[CA_CERT], paths[CA_KEY], ca)
        write_pair(paths[TLS_CERT], paths[TLS_KEY], serving)
    except OSError as error:
        raise CertificateError(f"cannot write certificates into {folder}: {error}") from None
    return GeneratedCertificates(
        ca_file=paths[CA_CERT],
        ca_key_file=paths[CA_KEY],
        cert_file=paths[TLS_CERT],
        key_file=paths[TLS_KEY],
        ca_bundle_b64=ca_bundle_b64(ca.cert_pem),
    )


def generate_dev_certificates(
    folder: Path,
    service: str = "edgewarden",
    namespace: str = "edgewarden",
    hosts_extra: tuple[str, ...] = ("localhost", "127.0.0.1"),
) -> DevCertificates:
    """Certificates for ``serve --dev``: reuse the folder's files while they are valid (so a
    ``curl --cacert`` keeps working across restarts), otherwise issue new ones."""
    folder = Path(folder)
    reused = _reusable(folder, service, namespace, hosts_extra)
    if reused is None:
        generate_certificates(
            folder, service=service, namespace=namespace, hosts_extra=hosts_extra, force=True
        )
        reused = (folder / CA_CERT).read_bytes()
    return DevCertificates(
        ca_file=folder / CA_CERT,
        cert_file=folder / TLS_CERT,
        key_file=folder / TLS_KEY,
        ca_bundle_b64=ca_bundle_b64(reused),
    )


def _reusable(
    folder: Path, service: str, namespace: str, hosts_extra: tuple[str, ...]
) -> bytes | None:
    """The CA PEM when the folder holds a valid, fitting chain with life left; else None."""
    try:
        ca_pem = (folder / CA_CERT).read_bytes()
        ca_cert = load_certificates(ca_pem, "CA certificate")[0]
        serving = load_key_pair((folder / TLS_CERT).read_bytes(), (folder / TLS_KEY).read_bytes())
    except (OSError, CertificateError):
        return None
    now = utcnow()
    wanted = set(service_dns_names(service, namespace)) | set(hosts_extra)
    present = set(dns_names_of(serving.cert)) | set(ip_addresses_of(serving.cert))
    if (
        not is_signed_by(serving.cert, ca_cert)
        or not wanted <= present
        or life_left_fraction(serving.cert, now) <= 1 / 3
        or serving.not_before > now
    ):
        return None
    return ca_pem
