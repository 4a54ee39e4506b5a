"""The server's settings: what ``edgewarden serve`` flags decide, as one typed value."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from webhook.policy.model.exception_rules import ExceptionRules
from webhook.registration.settings import RegistrationSettings

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
    # Losing a serving policy needs this (files) or a Policy object's deletion: an emptied
    # or half-written file looks like a removal otherwise.
    allow_removal: bool = False
    # Refuse a set that denies existing objects the serving set admits (an UPDATE of each to
    # itself, or its CREATE), more than this share of the objects the canary judged.
    max_canary_denial_share: float = 0.01
    # Policy files changed this recently, or while being read, are read again this much
    # later (a writer caught mid-write); still changing then, the reload is refused.
    settle_seconds: float = 0.5


@dataclass(frozen=True)
class ConnectionSettings:
    """What one connection may cost before it is answered or cut (docs/server.md)."""

    handshake_timeout: float = 5.0  # accept to the end of the TLS handshake
    header_timeout: float = 10.0  # connection open, or a request's first byte, to its headers
    body_timeout: float = 10.0  # headers to the last byte of the body
    idle_timeout: float = 30.0  # keep-alive: a response to the next request's first byte
    # At most this many connections (lowered to the file limit, less a reserve): at the
    # cap, the least recently active idle connection or handshake makes room.
    max_connections: int = 1000
    max_concurrent_requests: int = 128  # more in flight: 429 with Retry-After
    max_header_bytes: int = 32 * 1024  # request line and headers: above, 431
    max_headers: int = 100


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
    internal_lb_flavour: str | None = None  # None: each policy's own
    metrics_port: int | None = None  # plain-HTTP /metrics beside the HTTPS port
    reload: ReloadSettings = field(default_factory=ReloadSettings)
    # What one admission may cost (docs/policies.md "Cost"): the CEL budget, and a deadline
    # well under the webhook's timeout past which remaining policies fail by failurePolicy.
    evaluation_budget_ms: float = 50.0
    evaluation_deadline_ms: float = 1000.0
    connections: ConnectionSettings = field(default_factory=ConnectionSettings)
    # Require a client certificate signed by this CA on /validate and /mutate.
    client_ca: Path | None = None
    # How often files are checked; tests shorten these.
    policy_poll_seconds: float = 2.0
    cert_poll_seconds: float = 2.0  # docs/certs.md says so
    cert_manager_seconds: float = 60.0
    # The API server's timeout for calling us (the webhook configuration's timeoutSeconds;
    # the longest of the validating webhooks that run beside ours). A reserved place whose
    # object the cache has not shown this long plus the margin after it was reserved is
    # freed once the cache is current past that moment.
    webhook_timeout_seconds: float = 5.0
    reservation_margin_seconds: float = 5.0
    reservation_max_age_seconds: float = 300.0  # the backstop when the cache shows nothing
    # The watch cache: a watch silent this long is cut and listed again; a cache with no
    # event, bookmark or list for longer than cache_max_age_seconds makes /readyz fail and
    # is not answered from (the policies reading it fail by their failurePolicy). 30 s is
    # well under what the API server waits for a webhook (timeoutSeconds x its retries).
    watch_stall_seconds: float = 25.0
    cache_max_age_seconds: float = 30.0
    # Policy and PolicyException objects (CRDs) beside the files, when reading a real cluster.
    cluster_objects: bool = True
    # The continuous audit: seconds between runs (0: off; --dev turns it off).
    audit_interval_seconds: float = 0.0
    # Where the leader-election Lease lives (None: the pod's own namespace).
    leader_election_namespace: str | None = None
    # --manage-quotas: the leader keeps a services.loadbalancers ResourceQuota equal to each
    # namespace's LoadBalancer cap (webhook/controllers/quotas.py).
    manage_quotas: bool = False
    # --except-exported: the exported native objects (`edgewarden export`) judge their
    # policies; the server judges only the rest (webhook/native/coverage.py).
    except_exported: bool = False
    keep_on_webhook: tuple[str, ...] = ()
    quota_interval_seconds: float = 10.0
    # Plain-HTTP /healthz, /livez and /readyz on their own listener (None: only on the
    # HTTPS port, where they are served in any case).
    probe_port: int | None = None
    # PolicyExceptions: off unless --enable-exceptions, then only in the namespaces of
    # --exception-namespace, each ending at most --max-exception-days after its creation.
    exception_rules: ExceptionRules = field(default_factory=ExceptionRules)
    # ``--shadow DIR``: candidate policies judged beside the served set, never answering.
    shadow: tuple[Path, ...] = ()
    # --register-webhooks: the leader keeps the webhook configurations in the cluster
    # (webhook/controllers/registration.py); None: they are installed by someone else.
    registration: RegistrationSettings | None = None
    # On SIGTERM, keep serving this long first, every answer closing its connection, and
    # /readyz failing (webhook/serve/root.py): the API server's kept-alive connections move
    # to the other replicas before this one closes them.
    drain_seconds: float = 0.0
    # --claims: limit places no quota backs and unique keys are claimed in Claim objects at
    # the API server before admitting (webhook/cluster/claims.py); only when reading it.
    claims: bool = True
    claims_interval_seconds: float = 1.0  # the leader's confirm/release/collect pass
    # How long an unfulfilled pending claim weakens new ones on its unit (squatting).
    claim_cooldown_seconds: float = 300.0

    @property
    def reads_the_api(self) -> bool:
        """The cluster is the Kubernetes API, not a file or the in-memory --dev cluster."""
        return self.cluster_state is None and not self.dev

    @property
    def watches_cluster_objects(self) -> bool:
        return self.cluster_objects and self.reads_the_api
