"""The monitoring files (deploy/monitoring), promtool, the metric names the server exports
and the metric names a PromQL expression reads."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.checks import cached_tool
from tests.deploy.conftest import REPO

MONITORING = REPO / "deploy" / "monitoring"
RULES = MONITORING / "prometheus-rules.yaml"
DASHBOARD = MONITORING / "dashboard.json"
UNIT_TESTS = Path(__file__).with_name("alerts.test.yaml")
# When an active PolicyException expires (docs/monitoring.md).
EXCEPTION_METRIC = "edgewarden_policy_exception_expiry_timestamp_seconds"


def rule_groups(source: Path = RULES) -> list[dict[str, Any]]:
    """The rule groups of a PrometheusRule object file."""
    document = yaml.safe_load(source.read_text())
    assert document["kind"] == "PrometheusRule"
    return list(document["spec"]["groups"])


def rules(groups: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    return [rule for group in (groups or rule_groups()) for rule in group["rules"]]


def alert_names(groups: list[dict[str, Any]] | None = None) -> set[str]:
    return {rule["alert"] for rule in rules(groups) if "alert" in rule}


def recorded_names(groups: list[dict[str, Any]] | None = None) -> set[str]:
    return {rule["record"] for rule in rules(groups) if "record" in rule}


def write_rules_file(directory: Path, groups: list[dict[str, Any]]) -> Path:
    """A plain Prometheus rules file (what promtool reads) holding ``groups``."""
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(cached_tool("promtool")), *args], capture_output=True,
                          text=True, timeout=120, check=False, cwd=cwd)


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def dashboard_expressions(board: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query of the dashboard."""
    board = board or dashboard()
    return [(panel["title"], target["expr"])
            for panel in board["panels"] for target in panel.get("targets", [])]


# -- metric names -------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
             "unless", "bool", "offset", "inf", "nan"}


def promql_metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions,
    keywords, label names (in matchers or grouping clauses), durations or numbers."""
    text = _STRING.sub('""', expression)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        before = text[match.start() - 1] if match.start() else " "
        if before.isdigit() or before in ".$":  # 5e-05, 1.5e3, Grafana $variables
            continue
        if text[match.end():].lstrip().startswith("("):  # a function call
            continue
        if match.group().lower() in _KEYWORDS:
            continue
        names.add(match.group())
    return names


def scrape_text() -> str:
    """What a scrape of /metrics shows, from the real Metrics of
    webhook/admission/metrics.py with the real cluster cache's state fields, a certificate,
    and a sample of every labelled metric."""
    from kubernetes import client

    from webhook.admission.metrics import ENDPOINTS, RESULTS, Metrics
    from webhook.cluster.kube import KubeCluster
    from webhook.policy.model.exceptions import PolicyException

    metrics = Metrics()
    api = client.ApiClient()
    try:
        cluster = KubeCluster(api)  # nothing is contacted until start()
        metrics.watch_cluster(cluster.state)
        metrics.watch_certificate(lambda: 1_900_000_000.0)
        for endpoint in ENDPOINTS:
            metrics.tallies.observe_decision(endpoint, 0.001)
            for result in RESULTS[endpoint]:
                metrics.tallies.count_request(endpoint, result)
        metrics.tallies.count_violation("deny-nodeport-in-production", "Enforce")
        metrics.count_exemption("deny-nodeport-in-production", "deny")
        metrics.count_background_restart("cluster-objects")
        metrics.count_limit_hit("concurrent_requests")
        metrics.watch_connections(lambda: 3)
        metrics.set_background_up("cluster-objects", True)
        metrics.count_shadow("deny-nodeport-in-production", "deny")
        metrics.count_shadow_difference("deny-nodeport-in-production", "deny")
        metrics.set_existing_violations({("deny-nodeport-in-production", "shop", "Enforce"): 1})
        exception = PolicyException("legacy", "shop", frozenset({"deny-nodeport-in-production"}),
                                    names=frozenset({"gateway"}), expires_at=1_900_000_000.0)
        metrics.watch_exceptions(lambda: [exception], lambda: 1_800_000_000.0)
        return metrics.render().decode()
    finally:
        api.close()


def exported_metric_names() -> set[str]:
    """Every metric and sample name a server exports (scrape_text)."""
    from prometheus_client.parser import text_string_to_metric_families

    names = set()
    for family in text_string_to_metric_families(scrape_text()):
        names.add(family.name)
        names |= {sample.name for sample in family.samples}
    return names


def exported_sample_types() -> dict[str, str]:
    """Each sample name a scrape shows -> the type of its family (counter, gauge,
    histogram...): ``edgewarden_requests_total`` -> counter."""
    from prometheus_client.parser import text_string_to_metric_families

    types: dict[str, str] = {}
    for family in text_string_to_metric_families(scrape_text()):
        for sample in family.samples:
            types[sample.name] = family.type
    return types
