"""The parts of ``serve``'s settings the admission package owns: the listener and its
connections, and the policies and their reloads (webhook/serve/settings.py nests them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from webhook.policy.model.exception_rules import ExceptionRules

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


# The kube-apiserver's webhook client (client-go's transport) closes connections idle this
# long: Go's http.DefaultTransport IdleConnTimeout, which utilnet.SetTransportDefaults copies.
API_SERVER_IDLE_SECONDS = 90.0


@dataclass(frozen=True)
class ConnectionSettings:
    """What one connection may cost before it is answered or cut (docs/server.md)."""

    handshake_timeout: float = 5.0  # accept to the end of the TLS handshake
    header_timeout: float = 10.0  # connection open, or a request's first byte, to its headers
    body_timeout: float = 10.0  # headers to the last byte of the body
    # Keep-alive: a response to the next request's first byte. Longer than the API
    # server's own idle timeout (API_SERVER_IDLE_SECONDS), so it is the API server that
    # closes a pooled connection, never we one it is about to reuse (docs/http.md).
    idle_timeout: float = 120.0
    # At most this many connections (lowered to the file limit, less a reserve): at the
    # cap, the least recently active idle connection or handshake makes room.
    max_connections: int = 1000
    max_concurrent_requests: int = 128  # more in flight: 429 with Retry-After
    max_header_bytes: int = 32 * 1024  # request line and headers: above, 431
    max_headers: int = 100


@dataclass(frozen=True)
class ServerSettings:
    """Where the webhook listens and what an answer may cost the connection."""

    host: str = "0.0.0.0"  # in a Pod the API server reaches us through the Service
    port: int = DEFAULT_PORT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    connections: ConnectionSettings = field(default_factory=ConnectionSettings)
    metrics_port: int | None = None  # plain-HTTP /metrics beside the HTTPS port
    # Plain-HTTP /healthz, /livez and /readyz on their own listener (None: only on the
    # HTTPS port, where they are served in any case).
    probe_port: int | None = None
    dry_run: bool = False  # every policy records, none denies or patches
    decision_log: Path | None = None  # ``--audit-log``: the decision lines (None: stdout)
    # On SIGTERM, keep serving this long first, every answer closing its connection, and
    # /readyz failing (webhook/serve/root.py): the API server's kept-alive connections move
    # to the other replicas before this one closes them.
    drain_seconds: float = 0.0


@dataclass(frozen=True)
class PolicySettings:
    """Which policies are served, and how a new set gets in."""

    paths: tuple[Path, ...] = (Path("policies"),)
    # ``--shadow DIR``: candidate policies judged beside the served set, never answering.
    shadow: tuple[Path, ...] = ()
    internal_lb_flavour: str | None = None  # None: each policy's own
    # --except-exported: the exported native objects (`edgewarden export`) judge their
    # policies; the server judges only the rest (webhook/native/coverage.py).
    except_exported: bool = False
    keep_on_webhook: tuple[str, ...] = ()
    poll_seconds: float = 2.0  # how often the files are checked; tests shorten it
    reload: ReloadSettings = field(default_factory=ReloadSettings)
    # PolicyExceptions: off unless --enable-exceptions, then only in the namespaces of
    # --exception-namespace, each ending at most --max-exception-days after its creation.
    exception_rules: ExceptionRules = field(default_factory=ExceptionRules)
