"""The server's settings: what ``edgewarden serve`` flags decide, as one typed value."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024  # an UPDATE carries object and oldObject
DEFAULT_PORT = 8443
DEFAULT_DEV_DIR = Path(".edgewarden-dev")


@dataclass(frozen=True)
class ServerSettings:
    policies: tuple[Path, ...] = (Path("policies"),)
    host: str = "0.0.0.0"  # in a Pod the API server reaches us through the Service
    port: int = DEFAULT_PORT
    tls_cert: Path | None = None
    tls_key: Path | None = None
    dry_run: bool = False
    audit_log: Path | None = None
    cluster_state: Path | None = None
    dev: bool = False
    dev_dir: Path = DEFAULT_DEV_DIR
    manage_certs: bool = False
    cert_dir: Path | None = None
    cert_hosts: tuple[str, ...] = ()  # extra names in a --manage-certs serving certificate
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    log_level: str = "info"
    # How often files are checked; tests shorten these.
    policy_poll_seconds: float = 2.0
    cert_poll_seconds: float = 10.0
    cert_manager_seconds: float = 60.0
    reservation_ttl_seconds: float = 30.0
