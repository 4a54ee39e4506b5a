"""The per-request tallies (webhook/admission/tallies.py) export exactly what
prometheus-client's Counter and Histogram exported for the same updates: the dashboards,
alerts and recording rules read these series."""

from __future__ import annotations

import random
import re

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    enable_created_metrics,
    generate_latest,
)

from webhook.admission.metrics import DECISION_BUCKETS, ENDPOINTS, RESULTS, Metrics
from webhook.admission.tallies import DurationHistogram, LabelledCounts

FAMILIES = ("edgewarden_requests", "edgewarden_decision_duration_seconds",
            "edgewarden_violations")


class ReferenceMetrics:
    """The three metrics as prometheus-client objects, bound as the server bound them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "edgewarden_requests", "Admission requests answered, by endpoint and result.",
            ["endpoint", "result"], registry=self.registry)
        self.decision_seconds = Histogram(
            "edgewarden_decision_duration_seconds",
            "Time to judge one admission (parse to rendered answer), by endpoint.",
            ["endpoint"], buckets=DECISION_BUCKETS, registry=self.registry)
        self.violations = Counter(
            "edgewarden_violations", "Policy violations found, by policy and mode.",
            ["policy", "mode"], registry=self.registry)
        for endpoint in ENDPOINTS:
            for result in RESULTS[endpoint]:
                self.requests.labels(endpoint, result)
        for endpoint in ENDPOINTS:
            self.decision_seconds.labels(endpoint)

    def count_request(self, endpoint: str, result: str) -> None:
        self.requests.labels(endpoint, result).inc()

    def observe_decision(self, endpoint: str, seconds: float) -> None:
        self.decision_seconds.labels(endpoint).observe(seconds)

    def count_violation(self, policy: str, mode: str) -> None:
        self.violations.labels(policy, mode).inc()


def _lines(exposition: bytes) -> list[str]:
    """The three families' lines, with each ``_created`` value (a clock reading) blanked."""
    text = re.sub(r"(_created(?:\{[^}]*\})?) \S+", r"\1 T", exposition.decode())
    return [line for line in text.splitlines()
            if any(line.removeprefix("# HELP ").removeprefix("# TYPE ").startswith(name)
                   for name in FAMILIES)]


def _same_updates(seed: int, *targets: object) -> None:
    chosen = random.Random(seed)
    # every bucket bound exactly (an observation on a bound belongs to that bucket: le),
    # either side of each, and beyond the last
    durations = [*DECISION_BUCKETS, *(b * 0.999 for b in DECISION_BUCKETS),
                 *(b * 1.001 for b in DECISION_BUCKETS), 0.0, 45.0, 1e-9]
    policies = ["deny-nodeport-in-production", "limit-loadbalancers-per-namespace", "x"]
    for _ in range(500):
        endpoint = chosen.choice(ENDPOINTS)
        result = chosen.choice([*RESULTS[endpoint], "a-result-not-bound-at-start"])
        seconds = chosen.choice(durations)
        policy, mode = chosen.choice(policies), chosen.choice(["Enforce", "Warn", "Audit"])
        for target in targets:
            target.count_request(endpoint, result)  # type: ignore[attr-defined]
            target.observe_decision(endpoint, seconds)  # type: ignore[attr-defined]
            target.count_violation(policy, mode)  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_tallies_export_what_prometheus_client_exported(seed: int) -> None:
    served, reference = Metrics(), ReferenceMetrics()
    assert _lines(served.render()) == _lines(generate_latest(reference.registry))
    _same_updates(seed, served.tallies, reference)
    rendered = _lines(served.render())
    assert rendered == _lines(generate_latest(reference.registry))
    assert any(line.startswith("edgewarden_violations_created") for line in rendered)


def test_without_created_series_neither_exports_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_DISABLE_CREATED_SERIES", "true")
    disable_created_metrics()
    try:
        served, reference = Metrics(), ReferenceMetrics()
        _same_updates(4, served.tallies, reference)
        rendered = _lines(served.render())
        assert rendered == _lines(generate_latest(reference.registry))
    finally:
        enable_created_metrics()
    assert not any("_created" in line for line in rendered)


def test_an_observation_on_a_bound_counts_in_that_bucket() -> None:
    histogram = DurationHistogram((0.1, 0.5), ["validate"], clock=lambda: 7.0)
    for seconds in (0.1, 0.10000001, 0.5, 3.0):
        histogram.observe("validate", seconds)
    [(label, cumulative, total, created)] = histogram.snapshot()
    assert (label, cumulative, created) == ("validate", [1.0, 3.0, 4.0], 7.0)
    assert total == pytest.approx(3.70000001)


def test_a_counter_is_created_when_first_counted() -> None:
    now = [100.0]
    counts = LabelledCounts([("bound", "at-start")], clock=lambda: now[0])
    now[0] = 250.0
    counts.inc(("later",))
    counts.inc(("later",))
    counts.inc(("bound", "at-start"))
    assert counts.snapshot() == [(("bound", "at-start"), 1.0, 100.0), (("later",), 2.0, 250.0)]
