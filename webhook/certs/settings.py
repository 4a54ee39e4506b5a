"""The certificates part of ``serve``'s settings: the serving pair, who may call, and
whether edgewarden keeps them itself (``--manage-certs``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CertificateSettings:
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Require a client certificate signed by this CA on /validate and /mutate.
    client_ca: Path | None = None
    manage: bool = False  # --manage-certs: the Secret, the files and the caBundles
    directory: Path | None = None  # --cert-dir: where managed files are written
    hosts: tuple[str, ...] = ()  # extra names in a managed serving certificate
    poll_seconds: float = 2.0  # how often the files are checked (docs/certs.md says so)
    rotation_seconds: float = 60.0  # how often the manager looks at the Secret
    # The names --manage-certs looks objects up by (a chart with fullnameOverride renames
    # them): its Secret, the webhook Service (its DNS names are in the serving certificate)
    # and the configurations whose caBundle it keeps.
    secret_name: str = "edgewarden-tls"
    service_name: str = "edgewarden"
    webhook_configuration_names: tuple[str, str] = (
        "edgewarden-validating", "edgewarden-mutating")
