"""Prometheus metrics of one server, in its own registry (no process globals).

What every request updates (requests, decision time, violations) is kept as plain numbers
(tallies.py) and rendered here at each scrape; the rest are prometheus-client's own objects.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from webhook import __version__
from webhook.admission.tallies import LabelledCounts, RequestTallies
from webhook.policy.model.exceptions import PolicyException

# How prometheus-client writes a bucket's ``le`` (Go's float format; the library's helper has
# no annotations, so it is typed here).
_go_float: Callable[[float], str] = floatToGoString

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Decisions take tens of microseconds; the default buckets start at 5 ms and would put
# every observation in the first one. The buckets go on up to the API server's largest
# webhook timeout (30 s), so a p99 near the configured timeout can be seen (and alerted on:
# deploy/monitoring) rather than lumped into +Inf.
DECISION_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)

ENDPOINTS = ("validate", "mutate", "mutate-policyexception")
# /validate never patches; /mutate denies or warns only when a mutation cannot be evaluated;
# /mutate-policyexception records the approver, and denies only a write without a user.
RESULTS = {
    "validate": ("allowed", "denied", "warned", "bad_request", "error", "unauthenticated"),
    "mutate": ("allowed", "patched", "denied", "warned", "bad_request", "error",
               "unauthenticated"),
    "mutate-policyexception": ("allowed", "patched", "denied", "bad_request", "error",
                               "unauthenticated"),
}


class _CertificateExpiry(Collector):
    """The serving certificate's expiry, read at scrape time (it changes on rotation)."""

    def __init__(self, read: Callable[[], float | None]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        value = self._read()
        if value is not None:
            yield GaugeMetricFamily(
                "edgewarden_serving_certificate_expiry_timestamp_seconds",
                "When the serving certificate now served expires (Unix time).", value=value,
            )


# Fields of the cluster cache's state that only ever grow (per replica, since its start):
# exported as counters (``..._total``), so rate() and increase() read them right.
CACHE_COUNTS = frozenset({"relists", "errors", "stalls"})


class _ClusterCache(Collector):
    """The cluster cache's per-kind state (``{"Service": {"synced": True, "objects": 3}}``),
    read at scrape time: one metric per numeric field, labelled by kind; a gauge, or a
    counter for the counts in CACHE_COUNTS."""

    def __init__(self, read: Callable[[], Mapping[str, Mapping[str, Any]]]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        try:
            state = self._read()
        except Exception:  # a scrape must never fail because the cache is mid-update
            return
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        for kind, fields in state.items():
            for field, value in fields.items():
                if not isinstance(value, bool | int | float) or value is None:
                    continue
                family = families.get(field)
                if family is None:
                    name = f"edgewarden_cluster_cache_{field}"
                    words = field.replace("_", " ")
                    family = families[field] = (
                        CounterMetricFamily(name, f"Cluster cache {words} since the start, "
                                                  "by kind.", labels=["kind"])
                        if field in CACHE_COUNTS else
                        GaugeMetricFamily(name, f"Cluster cache {words}, by kind.",
                                          labels=["kind"]))
                family.add_metric([kind], float(value))
        yield from families.values()


class _ExceptionExpiry(Collector):
    """When each active PolicyException expires, read at scrape time: the alert
    EdgewardenPolicyExceptionExpiring (deploy/monitoring) fires a week before. Every replica
    exports it (each holds the exceptions); expired ones and those without an expiry are
    not exported (reports flag the latter)."""

    def __init__(self, read: Callable[[], Iterable[PolicyException]],
                 clock: Callable[[], float]) -> None:
        self._read = read
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "edgewarden_policy_exception_expiry_timestamp_seconds",
            "When an active PolicyException expires (Unix time), by its namespace, name and "
            "the policy it exempts from.", labels=["namespace", "exception", "policy"],
        )
        now = self._clock()
        try:
            exceptions = list(self._read())
        except Exception:  # a scrape must never fail because the exceptions are mid-update
            exceptions = []
        for exception in exceptions:
            if exception.expires_at is None or not exception.active_at(now):
                continue
            for policy in sorted(exception.policies):
                family.add_metric([exception.namespace, exception.name, policy],
                                  exception.expires_at)
        yield family


class _ExistingViolations(Collector):
    """The continuous audit's last count of violations among existing objects; only the
    replica that leads audits, so the others export nothing (sum or max over replicas)."""

    def __init__(self) -> None:
        self.counts: Mapping[tuple[str, str, str], int] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "edgewarden_existing_violations",
            "Violations among existing objects at the last continuous audit, by policy, "
            "namespace and mode (exported by the replica that leads the audit).",
            labels=["policy", "namespace", "mode"],
        )
        for (policy, namespace, mode), count in sorted(self.counts.items()):
            family.add_metric([policy, namespace, mode], count)
        yield family


class _Tallies(Collector):
    """The per-request tallies as prometheus-client's Counter and Histogram exported them:
    ``edgewarden_requests_total``, ``edgewarden_decision_duration_seconds`` (buckets, count,
    sum) and ``edgewarden_violations_total``, each series with its ``_created`` unless
    PROMETHEUS_DISABLE_CREATED_SERIES says otherwise."""

    def __init__(self, tallies: RequestTallies) -> None:
        self._tallies = tallies
        self._bucket_labels = [_go_float(bound) for bound in tallies.decision_seconds.bounds]
        self._created = os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "False").lower() \
            not in ("true", "1", "t")  # read as prometheus-client reads it

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        tallies = self._tallies
        requests = CounterMetricFamily(
            "edgewarden_requests", "Admission requests answered, by endpoint and result.",
            labels=["endpoint", "result"])
        self._add_counts(requests, tallies.requests)
        yield requests
        durations = HistogramMetricFamily(
            "edgewarden_decision_duration_seconds",
            "Time to judge one admission (parse to rendered answer), by endpoint.",
            labels=["endpoint"])
        for endpoint, cumulative, total, created in tallies.decision_seconds.snapshot():
            durations.add_metric([endpoint], list(zip(self._bucket_labels, cumulative,
                                                      strict=True)), total)
            if self._created:
                durations.add_sample(f"{durations.name}_created", {"endpoint": endpoint},
                                     created)
        yield durations
        violations = CounterMetricFamily(
            "edgewarden_violations", "Policy violations found, by policy and mode.",
            labels=["policy", "mode"])
        self._add_counts(violations, tallies.violations)
        yield violations

    def _add_counts(self, family: CounterMetricFamily, counts: LabelledCounts) -> None:
        for labels, value, created in counts.snapshot():
            family.add_metric(list(labels), value, created=created if self._created else None)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # What runs (a gauge of 1, labelled: `* on(pod) group_left(version)` joins it), and
        # the process itself: memory, CPU, open files, start time (process_*), the Python
        # (python_info) and its garbage collector (python_gc_*).
        self.build_info = Gauge(
            "edgewarden_build_info",
            "Always 1; the edgewarden version and the Python it runs on, as labels.",
            ["version", "python"], registry=self.registry,
        )
        self.build_info.labels(__version__, platform.python_version()).set(1)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        # Requests, decision time and violations: updated on every request, so kept as plain
        # numbers (tallies.py) and rendered here at each scrape.
        self.tallies = RequestTallies(RESULTS, DECISION_BUCKETS)
        self.registry.register(_Tallies(self.tallies))
        self.policy_load_errors = Counter(
            "edgewarden_policy_load_errors",
            "Policy reloads refused, for any reason (the previous set kept serving).",
            registry=self.registry,
        )
        self.policy_reloads_refused = Counter(
            "edgewarden_policy_reloads_refused",
            "Policy reloads refused, by reason: invalid (did not load), unsettled (files "
            "kept changing while read), empty, removal (lacks a serving policy), canary "
            "(errors on existing objects), denies (denies existing objects), suites (tests "
            "fail).",
            ["reason"], registry=self.registry,
        )
        self.policy_reload_refused = Gauge(
            "edgewarden_policy_reload_refused",
            "1 while the latest policy reload was refused and an older set serves, else 0.",
            registry=self.registry,
        )
        self.policy_reloads = Counter(
            "edgewarden_policy_reloads", "Policy sets loaded and swapped in after start.",
            registry=self.registry,
        )
        self.policies_loaded = Gauge(
            "edgewarden_policies_loaded", "Policies in the set now serving.",
            registry=self.registry,
        )
        self.connection_limit_hits = Counter(
            "edgewarden_connection_limit_hits",
            "Connections cut or requests refused by a connection limit, by limit: "
            "handshake_timeout, idle_connection, header_timeout, body_timeout, header_size, "
            "concurrent_requests, max_connections, evicted_idle, evicted_handshake, "
            "file_limit, tls_refused, invalid_request, client_certificate.",
            ["limit"], registry=self.registry,
        )
        self.exemptions = Counter(
            "edgewarden_exemptions",
            "Admissions a PolicyException let through, by policy and what the policy would "
            "have done (deny, warn, audit, patch).", ["policy", "would"], registry=self.registry,
        )
        # prometheus_client appends _total to a Counter's name.
        self.background_restarts = Counter(
            "edgewarden_background_restarts",
            "Background tasks (informers' consumers, leader election, Policy and "
            "PolicyException objects, the continuous audit, certificate rotation, policy "
            "file reloads) restarted by the supervisor after a failure, by task.",
            ["task"], registry=self.registry,
        )
        self.background_up = Gauge(
            "edgewarden_background_task_up",
            "1 while a supervised background task runs, 0 while it waits to be restarted.",
            ["task"], registry=self.registry,
        )
        # Shadow mode (webhook/admission/shadow.py): what the candidates would do.
        self.shadow_decisions = Counter(
            "edgewarden_shadow_decisions",
            "What each shadow (candidate) policy would have done to the admissions it "
            "matched, by policy and result (allow, deny, warn, audit, patch, error); "
            "never part of an answer.", ["policy", "result"], registry=self.registry,
        )
        self.shadow_differences = Counter(
            "edgewarden_shadow_differences",
            "Admissions where a shadow policy would have acted otherwise than the enforced "
            "policy of its name (or than nothing, for a new one), by policy and what the "
            "shadow policy would have done.", ["policy", "result"], registry=self.registry,
        )
        self.shadow_policies_loaded = Gauge(
            "edgewarden_shadow_policies_loaded",
            "Policies in the shadow set judged beside the one now serving.",
            registry=self.registry,
        )
        self._shadow_children: dict[tuple[str, str], Any] = {}
        self._existing = _ExistingViolations()
        self.registry.register(self._existing)

    def count_background_restart(self, task: str) -> None:
        self.background_restarts.labels(task).inc()

    def set_background_up(self, task: str, up: bool) -> None:
        self.background_up.labels(task).set(1 if up else 0)

    def count_shadow(self, policy: str, result: str) -> None:
        child = self._shadow_children.get((policy, result))
        if child is None:  # bound on first use, as violations are: candidates come and go
            child = self._shadow_children[(policy, result)] = self.shadow_decisions.labels(
                policy, result)
        child.inc()

    def count_shadow_difference(self, policy: str, result: str) -> None:
        self.shadow_differences.labels(policy, result).inc()

    def count_exemption(self, policy: str, would: str) -> None:
        self.exemptions.labels(policy, would).inc()

    def set_existing_violations(self, counts: Mapping[tuple[str, str, str], int]) -> None:
        """Replace the (policy, namespace, mode) counts of the last audit, whole."""
        self._existing.counts = dict(counts)

    def watch_exceptions(self, read: Callable[[], Iterable[PolicyException]],
                         clock: Callable[[], float]) -> None:
        """Export the expiry of every active PolicyException ``read`` gives, at each scrape."""
        self.registry.register(_ExceptionExpiry(read, clock))

    def watch_cluster(self, read_state: Callable[[], Mapping[str, Mapping[str, Any]]]) -> None:
        """Expose the cluster cache's state (``ClusterView.state()``) at each scrape."""
        self.registry.register(_ClusterCache(read_state))

    def count_limit_hit(self, limit: str) -> None:
        self.connection_limit_hits.labels(limit).inc()

    def watch_connections(self, read_open: Callable[[], int]) -> None:
        """Expose the number of open connections (handshakes included) at each scrape."""
        gauge = Gauge("edgewarden_connections_open",
                      "Connections open now, TLS handshakes included.", registry=self.registry)
        gauge.set_function(lambda: float(read_open()))

    def watch_certificate(self, read_not_after: Callable[[], float | None]) -> None:
        """Expose the serving certificate's expiry as a Unix timestamp."""
        self.registry.register(_CertificateExpiry(read_not_after))

    def render(self) -> bytes:
        return generate_latest(self.registry)
