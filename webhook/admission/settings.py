"""The server's settings: what ``edgewarden serve`` flags decide, as one typed value."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024  # an UPDATE carries object and oldObject
DEFAULT_PORT = 8443
DEFAULT_DEV_DIR = Path(".edgewarden-dev")


@dataclass(frozen=True)
class ReloadSettings:
    """How careful a reload is; the defaults refuse what looks like a mistake."""

    canary: bool = True  # judge a sample of existing objects with the new set first
    canary_sample: int = 1000
    run_suites: bool = True  # run the *.test.yaml suites found beside the policies
    allow_empty: bool = False
    max_drop_share: float = 0.5  # refuse a set that drops more than half the serving policies


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
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    log_level: str = "info"
    internal_lb_flavour: str | None = None  # None: each policy's own
    metrics_port: int | None = None  # plain-HTTP /metrics beside the HTTPS port
    reload: ReloadSettings = field(default_factory=ReloadSettings)
    # How often files are checked; tests shorten these.
    policy_poll_seconds: float = 2.0
    cert_poll_seconds: float = 10.0
    cert_manager_seconds: float = 60.0
    reservation_ttl_seconds: float = 30.0
    # Policy and PolicyException objects (CRDs) beside the files, when reading a real cluster.
    cluster_objects: bool = True
    # The continuous audit: seconds between runs (0: off; --dev turns it off).
    audit_interval_seconds: float = 0.0
    # Where the leader-election Lease lives (None: the pod's own namespace).
    leader_election_namespace: str | None = None

    @property
    def reads_the_api(self) -> bool:
        """The cluster is the Kubernetes API, not a file or the in-memory --dev cluster."""
        return self.cluster_state is None and not self.dev

    @property
    def watches_cluster_objects(self) -> bool:
        return self.cluster_objects and self.reads_the_api
