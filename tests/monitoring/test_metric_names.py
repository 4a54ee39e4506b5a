"""The alerts and the dashboard read only metrics the server exports (read from the real
Metrics of webhook/admission/metrics.py) and what the rules themselves record: the
monitoring cannot drift from the code unnoticed."""

from __future__ import annotations

import pytest

from .sources import (
    EXCEPTION_METRIC,
    dashboard_expressions,
    exported_metric_names,
    promql_metric_names,
    recorded_names,
    rules,
)


@pytest.fixture(scope="module")
def known() -> set[str]:
    return exported_metric_names() | recorded_names()


@pytest.mark.parametrize(("expression", "names"), [
    ('sum by (endpoint, le) (rate(edgewarden_decision_duration_seconds_bucket'
     '{result=~"error|bad_request", le!="+Inf"}[$__rate_interval]))',
     {"edgewarden_decision_duration_seconds_bucket"}),
    ("min by (namespace, exception, policy) (some_metric) - time() < 7 * 86400",
     {"some_metric"}),
    ("a / on(pod) group_left(kind) b > 0.5 * scalar(ns:recorded) offset 5m",
     {"a", "b", "ns:recorded"}),
    ("absent(up{job=\"x y\"}) or vector(1e-05)", {"up"}),
    ('histogram_quantile(0.99, sum without (instance) (rate(x_bucket[5m:1m])))', {"x_bucket"}),
])
def test_metric_names_are_read_from_promql(expression: str, names: set[str]) -> None:
    assert promql_metric_names(expression) == names


def test_the_server_exports_what_the_metrics_page_documents() -> None:
    exported = exported_metric_names()
    for name in ("edgewarden_requests_total", "edgewarden_decision_duration_seconds_bucket",
                 "edgewarden_violations_total", "edgewarden_policy_load_errors_total",
                 "edgewarden_policy_reloads_total", "edgewarden_policies_loaded",
                 "edgewarden_cluster_cache_synced", "edgewarden_cluster_cache_objects",
                 "edgewarden_serving_certificate_expiry_timestamp_seconds", EXCEPTION_METRIC,
                 "edgewarden_existing_violations", "edgewarden_exemptions_total"):
        assert name in exported, name


def test_alerts_read_only_metrics_the_server_exports(known: set[str]) -> None:
    for rule in rules():
        names = promql_metric_names(rule["expr"])
        where = rule.get("alert") or rule.get("record")
        if "alert" in rule:
            assert names, f"{where} reads no metric"
        assert names <= known, f"{where} reads {sorted(names - known)}, not exported"


def test_dashboard_reads_only_metrics_the_server_exports(known: set[str]) -> None:
    expressions = dashboard_expressions()
    assert expressions
    for title, expression in expressions:
        names = promql_metric_names(expression)
        assert names, f"panel {title!r}: {expression} reads no metric"
        assert names <= known, f"panel {title!r} reads {sorted(names - known)}, not exported"


def test_alerts_cover_what_the_issue_asks() -> None:
    read = {name for rule in rules() if "alert" in rule
            for name in promql_metric_names(rule["expr"])}
    assert read >= {
        "edgewarden_requests_total", "edgewarden_decision_duration_seconds_bucket",
        "edgewarden_serving_certificate_expiry_timestamp_seconds",
        "edgewarden_cluster_cache_synced", "edgewarden_policy_reload_refused",
        EXCEPTION_METRIC,
    }
    results = {rule["alert"]: rule["expr"] for rule in rules() if "alert" in rule}
    assert 'result="error"' in results["EdgewardenAdmissionErrors"]
    assert 'result="bad_request"' in results["EdgewardenBadRequests"]


def test_dashboard_covers_what_the_issue_asks() -> None:
    read = {name for _title, expression in dashboard_expressions()
            for name in promql_metric_names(expression)}
    assert read >= {
        "edgewarden_requests_total",                      # requests by result
        "edgewarden_decision_duration_seconds_bucket",    # latency quantiles
        "edgewarden_violations_total",                    # violations by policy
        "edgewarden_cluster_cache_synced", "edgewarden_cluster_cache_objects",
        "edgewarden_serving_certificate_expiry_timestamp_seconds",
        "edgewarden_policy_reloads_total", "edgewarden_policy_load_errors_total",
        # issue 23: 429s, the build and the process
        "edgewarden_connection_limit_hits_total", "edgewarden_build_info",
        "process_cpu_seconds_total", "process_resident_memory_bytes",
    }
