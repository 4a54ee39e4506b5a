"""``serve``'s settings: one nested value, each part owned by the package that uses it, and
the one place ``serve``'s options map onto the parts (``from_options``).

The options keep the names they have always had (the CLI's and the tests'); ``OPTIONS``
says where each one goes, so a new option is one line here and one field in its part.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webhook.admission.loaded import EvaluationBudget
from webhook.admission.settings import (
    DEFAULT_DEV_DIR,
    PolicySettings,
    ServerSettings,
)
from webhook.certs.settings import CertificateSettings
from webhook.cluster.settings import CacheSettings, ClaimingSettings, ReservationSettings
from webhook.controllers.settings import ControllerSettings


@dataclass(frozen=True)
class ServeSettings:
    server: ServerSettings = field(default_factory=ServerSettings)
    policies: PolicySettings = field(default_factory=PolicySettings)
    # What one admission may cost (docs/policies.md "Cost"): the CEL budget, and a deadline
    # well under the webhook's timeout past which remaining policies fail by failurePolicy.
    evaluation: EvaluationBudget = field(
        default_factory=lambda: EvaluationBudget(budget_ms=50.0, deadline_ms=1000.0))
    certificates: CertificateSettings = field(default_factory=CertificateSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    reservations: ReservationSettings = field(default_factory=ReservationSettings)
    claims: ClaimingSettings = field(default_factory=ClaimingSettings)
    controllers: ControllerSettings = field(default_factory=ControllerSettings)
    dev: bool = False  # generated certificates and an in-memory cluster (--dev)
    dev_dir: Path = DEFAULT_DEV_DIR
    log_level: str = "info"

    @property
    def reads_the_api(self) -> bool:
        """The cluster is the Kubernetes API, not a file or the in-memory --dev cluster."""
        return self.cache.state_file is None and not self.dev

    @property
    def watches_cluster_objects(self) -> bool:
        return self.controllers.cluster_objects and self.reads_the_api

    @property
    def takes_claims(self) -> bool:
        """Limits and unique keys are claimed at the API server (there is one to ask)."""
        return self.claims.enabled and self.reads_the_api


# option name -> (part, field); a part of None is a field of ServeSettings itself.
OPTIONS: dict[str, tuple[str | None, str]] = {
    "host": ("server", "host"),
    "port": ("server", "port"),
    "max_body_bytes": ("server", "max_body_bytes"),
    "connections": ("server", "connections"),
    "metrics_port": ("server", "metrics_port"),
    "probe_port": ("server", "probe_port"),
    "dry_run": ("server", "dry_run"),
    "audit_log": ("server", "decision_log"),
    "policies": ("policies", "paths"),
    "shadow": ("policies", "shadow"),
    "internal_lb_flavour": ("policies", "internal_lb_flavour"),
    "except_exported": ("policies", "except_exported"),
    "keep_on_webhook": ("policies", "keep_on_webhook"),
    "policy_poll_seconds": ("policies", "poll_seconds"),
    "reload": ("policies", "reload"),
    "exception_rules": ("policies", "exception_rules"),
    "evaluation_budget_ms": ("evaluation", "budget_ms"),
    "evaluation_deadline_ms": ("evaluation", "deadline_ms"),
    "tls_cert": ("certificates", "tls_cert"),
    "tls_key": ("certificates", "tls_key"),
    "client_ca": ("certificates", "client_ca"),
    "manage_certs": ("certificates", "manage"),
    "cert_dir": ("certificates", "directory"),
    "cert_hosts": ("certificates", "hosts"),
    "cert_poll_seconds": ("certificates", "poll_seconds"),
    "cert_manager_seconds": ("certificates", "rotation_seconds"),
    "cluster_state": ("cache", "state_file"),
    "watch_stall_seconds": ("cache", "watch_stall_seconds"),
    "cache_max_age_seconds": ("cache", "max_age_seconds"),
    "webhook_timeout_seconds": ("reservations", "webhook_timeout_seconds"),
    "reservation_margin_seconds": ("reservations", "margin_seconds"),
    "reservation_max_age_seconds": ("reservations", "max_age_seconds"),
    "claims": ("claims", "enabled"),
    "claims_interval_seconds": ("claims", "interval_seconds"),
    "claim_cooldown_seconds": ("claims", "cooldown_seconds"),
    "cluster_objects": ("controllers", "cluster_objects"),
    "audit_interval_seconds": ("controllers", "report_interval_seconds"),
    "leader_election_namespace": ("controllers", "leader_namespace"),
    "manage_quotas": ("controllers", "manage_quotas"),
    "quota_interval_seconds": ("controllers", "quota_interval_seconds"),
    "registration": ("controllers", "registration"),
    "drain_seconds": ("server", "drain_seconds"),
    "dev": (None, "dev"),
    "dev_dir": (None, "dev_dir"),
    "log_level": (None, "log_level"),
    "cert_secret": ("certificates", "secret_name"),
    "service_name": ("certificates", "service_name"),
    "webhook_configuration_names": ("certificates", "webhook_configuration_names"),
    "leader_election_lease": ("controllers", "leader_lease"),
}


def from_options(options: Mapping[str, Any],
                 base: ServeSettings | None = None) -> ServeSettings:
    """``base`` (the defaults) with ``options`` set, each where ``OPTIONS`` puts it; an
    option it does not know is a programming error (TypeError)."""
    settings = base or ServeSettings()
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"no serve setting is called {', '.join(unknown)}")
    parts: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for name, value in options.items():
        part, field_name = OPTIONS[name]
        if part is None:
            top[field_name] = value
        else:
            parts.setdefault(part, {})[field_name] = value
    for part, changes in parts.items():
        top[part] = dataclasses.replace(getattr(settings, part), **changes)
    return dataclasses.replace(settings, **top)
